//! The Provider trait, its request and response types, schemas and the provider registry
