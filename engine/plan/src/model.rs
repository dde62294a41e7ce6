//! The plan: an immutable record of what apply will do, and why.

use std::collections::BTreeMap;

use flotilla_config::addr::{ProviderConfigAddr, ResourceInstanceAddr, ResourceMode};
use flotilla_lang::Value;
use flotilla_provider::ReplaceReason;

/// What happens to one resource instance.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing changes.
    NoOp,
    /// A new object is created.
    Create,
    /// A data source is read during apply (its configuration is not known yet).
    Read,
    /// The object is changed in place.
    Update,
    /// The object is destroyed, then a new one is created.
    DeleteThenCreate,
    /// A new object is created, then the old one is destroyed (`create_before_destroy`).
    CreateThenDelete,
    /// The object is destroyed.
    Delete,
}

impl Action {
    /// Whether this is a replacement.
    pub fn is_replace(self) -> bool {
        matches!(self, Action::DeleteThenCreate | Action::CreateThenDelete)
    }

    /// How much this action changes, for summarising a resource's instances by the strongest
    /// one: replace > destroy > create > update > read > no-op.
    pub fn weight(self) -> u8 {
        match self {
            Action::DeleteThenCreate | Action::CreateThenDelete => 5,
            Action::Delete => 4,
            Action::Create => 3,
            Action::Update => 2,
            Action::Read => 1,
            Action::NoOp => 0,
        }
    }

    /// The class pictures use for it: create, update, replace, destroy, read or unchanged.
    pub fn class(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::DeleteThenCreate | Action::CreateThenDelete => "replace",
            Action::Delete => "destroy",
            Action::Read => "read",
            Action::NoOp => "unchanged",
        }
    }

    /// Terraform-style action list (`["delete", "create"]`).
    pub fn as_list(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Read => &["read"],
            Action::Update => &["update"],
            Action::DeleteThenCreate => &["delete", "create"],
            Action::CreateThenDelete => &["create", "delete"],
            Action::Delete => &["delete"],
        }
    }
}

/// The planned change of one resource instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceChange {
    /// The instance's address after this change.
    pub addr: ResourceInstanceAddr,
    /// Its previous address, when a `moved` block renamed it.
    pub prev_addr: Option<ResourceInstanceAddr>,
    /// The provider configuration managing it.
    pub provider: ProviderConfigAddr,
    /// What happens.
    pub action: Action,
    /// The object before (`None` for a create).
    pub before: Option<Value>,
    /// The object after (`None` for a delete); may hold unknowns.
    pub after: Option<Value>,
    /// For replacements: which attributes force it and why.
    pub replace_reasons: Vec<ReplaceReason>,
    /// Why the action was chosen when it is not obvious ("requested with -replace",
    /// "no longer in configuration", "deleted outside flotilla", ...).
    pub reason: Option<String>,
    /// Resources this one depends on (for state and destroy order).
    pub dependencies: Vec<String>,
    /// Whether the resource uses `create_before_destroy`.
    pub create_before_destroy: bool,
    /// For an import: the id the existing object is adopted by (`import` blocks,
    /// `flotilla import`).
    pub importing: Option<String>,
    /// What the provider says the change will do beyond the object (`PlanResponse::notes`).
    pub notes: Vec<String>,
}

impl ResourceChange {
    /// Whether this changes anything (a move counts).
    pub fn is_change(&self) -> bool {
        self.action != Action::NoOp || self.prev_addr.is_some() || self.importing.is_some()
    }

    /// Managed resource or data source.
    pub fn mode(&self) -> ResourceMode {
        self.addr.resource.mode
    }
}

/// The planned change of one root output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputChange {
    /// Output name.
    pub name: String,
    /// Create, update, delete or no-op.
    pub action: Action,
    /// Recorded value, if any.
    pub before: Option<Value>,
    /// New value, if any (may be unknown).
    pub after: Option<Value>,
    /// Declared `sensitive = true`.
    pub sensitive: bool,
}

/// Why the plan was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanMode {
    /// Make the infrastructure match the configuration.
    #[default]
    Normal,
    /// Destroy everything in state.
    Destroy,
    /// Only accept changes made outside flotilla into state.
    RefreshOnly,
}

/// An immutable plan: apply executes it and decides nothing new.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Normal, destroy or refresh-only.
    pub mode: PlanMode,
    /// Resource changes, sorted by address (no-ops included, so apply knows every instance).
    pub changes: Vec<ResourceChange>,
    /// Differences between recorded state and reality found by refresh.
    pub drift: Vec<ResourceChange>,
    /// Root output changes, sorted by name.
    pub outputs: Vec<OutputChange>,
    /// The refreshed prior state (what apply starts from).
    pub prior_state: flotilla_state::State,
    /// The serial of the state the plan was made against (before refresh).
    pub state_serial: u64,
    /// Root variable values used (sensitive ones stay marked).
    pub variables: BTreeMap<String, Value>,
    /// blake3 of the configuration files.
    pub config_hash: String,
    /// Resource addresses given with `-target` (apply honours the same set).
    pub targets: Vec<String>,
    /// Fleet rollouts: waves, members and their changes, gates (apply's schedule).
    pub rollouts: Vec<crate::rollout::RolloutPlan>,
    /// The operations apply runs and their order ([`crate::exec`]).
    pub execution: crate::exec::Execution,
    /// Deletions of old objects an interrupted create-before-destroy replacement left
    /// (recorded in state as deposed), by address.
    pub deposed: Vec<ResourceChange>,
}

/// Counts for the `Plan: N to add, N to change, N to destroy.` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Creates (including the create half of replacements).
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Deletes (including the delete half of replacements).
    pub destroy: usize,
    /// Moves without other changes.
    pub moved: usize,
    /// Existing objects adopted into state.
    pub import: usize,
}

impl Plan {
    /// Counts of what the plan does to managed resources.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in self
            .changes
            .iter()
            .filter(|c| c.mode() == ResourceMode::Managed)
        {
            if c.importing.is_some() {
                s.import += 1;
            }
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::DeleteThenCreate | Action::CreateThenDelete => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::NoOp if c.prev_addr.is_some() => s.moved += 1,
                Action::NoOp | Action::Read => {}
            }
        }
        s.destroy += self.deposed.len();
        s
    }

    /// Whether applying would change infrastructure, state or outputs.
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.is_change() && c.action != Action::Read)
            || self.outputs.iter().any(|o| o.action != Action::NoOp)
            || (self.mode == PlanMode::RefreshOnly && !self.drift.is_empty())
            || self.rollouts.iter().any(|r| r.runs())
            || !self.deposed.is_empty()
    }
}
