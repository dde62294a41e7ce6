//! The dependency graph: building, cycle reporting, ordered walks, DOT and Mermaid export
