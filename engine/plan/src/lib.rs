//! The planner: refresh, evaluation of the module tree, diffs through providers, the Plan
