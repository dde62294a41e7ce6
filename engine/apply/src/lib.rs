//! The executor: carries out a [`Plan`], and records what exists as it goes.
//!
//! Apply walks its own execution graph with bounded parallelism: the configuration graph with
//! every planned resource instance as an operation of its own (instances of one resource run
//! side by side), re-evaluating the configuration now that more values are known. For each
//! instance it executes exactly the action written in the plan; the provider's final plan
//! must agree with every value the plan already knew, or the instance fails with
//! "inconsistent final plan". Deletions of instances no longer in the configuration (and
//! everything, for `destroy`) run afterwards as a graph of their own, each object after
//! everything that depended on it.
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
