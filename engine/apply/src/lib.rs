//! The executor: applies a Plan with bounded parallelism, persisting state after every resource
