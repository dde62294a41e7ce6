//! The executor: carries out a [`Plan`], and records what exists as it goes.
//!
//! Apply walks the same graph as the planner with bounded parallelism, re-evaluating the
//! configuration now that more values are known. For each instance it executes exactly the
//! action written in the plan; the provider's final plan must agree with every value the plan
//! already knew, or the instance fails with "inconsistent final plan". Deletions of instances
//! no longer in the configuration (and everything, for `destroy`) run afterwards in reverse
//! dependency order.
//!
//! Every completed operation is appended to the state journal (group-committed with one fsync
//! per batch) so a crash loses at most the operations in flight; the snapshot is rewritten
//! atomically at the end. When an instance fails, everything that needs it is skipped,
//! independent branches continue, and the state records exactly what exists.
//!
//! **Invariant:** apply makes no decision that is not in the plan: no new instances, no
//! different actions.

mod executor;
mod journal;

pub use executor::{ApplyEvent, ApplyInput, ApplyReport, Progress, apply};
