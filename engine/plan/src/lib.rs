//! The planner: from configuration, state and reality to an immutable [`Plan`].
//!
//! [`plan`] walks the dependency graph (see `flotilla-graph`) evaluating every node in every
//! module instance. For each resource instance it refreshes the prior state through the
//! provider (recording drift), evaluates the configuration against the resource's schema,
//! builds the proposed new state, asks the provider for the planned object, and decides the
//! action: create, update, replace (with the attributes and reasons that force it), delete,
//! read, or no-op. Instances in state that the configuration no longer declares are deleted.
//!
//! [`eval`] is the evaluation walk shared with apply: apply re-evaluates the same expressions
//! with the values that became known, through its own [`eval::ResourceHandler`].
//!
//! **Invariant:** planning changes nothing: providers are only asked to read and plan.
//! **Invariant:** the plan is deterministic: changes are sorted by address.

pub mod desired;
pub mod eval;
pub mod exec;
pub mod inputs;
mod model;
pub mod planfile;
mod planner;
pub mod rollout;
pub mod state_edit;
mod validate;

pub use model::{Action, OutputChange, Plan, PlanMode, ResourceChange, Summary};
pub use planner::{
    PlanInput, PlanOptions, ignore_changes, mark_schema_sensitive, moved_address, plan,
    proposed_new, recorded_value, resource_dependencies, state_value,
};
pub use validate::{implied_dependencies, validate_static};
