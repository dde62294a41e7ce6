//! The in-memory state model.

use std::collections::BTreeMap;

use flotilla_config::addr::{ProviderConfigAddr, ResourceInstanceAddr};

/// One resource instance as recorded after apply.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceInstanceState {
    /// The provider configuration that manages it.
    pub provider: ProviderConfigAddr,
    /// Its attributes as plain JSON (sensitive values included; see `sensitive`).
    pub attributes: serde_json::Value,
    /// Mask of sensitive attributes (`true` at sensitive paths), as in the plan format.
    #[serde(default = "no_marks", skip_serializing_if = "is_false")]
    pub sensitive: serde_json::Value,
    /// Resources it depended on when applied (for destroy order), as addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Whether it was created with `create_before_destroy`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_before_destroy: bool,
    /// Written but not finished (e.g. it never became ready): the next plan replaces it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tainted: bool,
}

fn no_marks() -> serde_json::Value {
    serde_json::Value::Bool(false)
}

fn is_false(v: &serde_json::Value) -> bool {
    v.is_null() || v == &serde_json::Value::Bool(false)
}

/// A root module output as recorded after apply.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputState {
    /// The value.
    pub value: serde_json::Value,
    /// Whether it is marked sensitive.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// Everything flotilla has recorded about what exists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// Grows by one with every write.
    pub serial: u64,
    /// Identifies this state's history; a plan for another lineage is refused.
    pub lineage: String,
    /// Resource instances by address.
    pub resources: BTreeMap<ResourceInstanceAddr, ResourceInstanceState>,
    /// Root module outputs.
    pub outputs: BTreeMap<String, OutputState>,
    /// Fleet rollouts' progress, by the address of the module instance declaring each.
    pub rollouts: BTreeMap<String, crate::RolloutRecord>,
    /// Objects a create-before-destroy replacement replaced and has not deleted yet (an
    /// interrupted apply leaves them here; the next plan deletes them).
    pub deposed: BTreeMap<ResourceInstanceAddr, ResourceInstanceState>,
}

impl State {
    /// An empty state with a fresh lineage.
    pub fn new() -> State {
        State {
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            rollouts: BTreeMap::new(),
            deposed: BTreeMap::new(),
        }
    }

    /// Applies one journal entry.
    pub fn apply_entry(&mut self, entry: &JournalEntry) {
        match entry {
            JournalEntry::Put { addr, instance } => {
                self.resources.insert(addr.clone(), instance.clone());
            }
            JournalEntry::Remove { addr } => {
                self.resources.remove(addr);
            }
            JournalEntry::Rename { from, to } => {
                if let Some(r) = self.resources.remove(from) {
                    self.resources.insert(to.clone(), r);
                }
            }
            JournalEntry::Rollout { name, record } => {
                self.rollouts.insert(name.clone(), (**record).clone());
            }
            JournalEntry::RolloutHead { name, head } => {
                self.rollouts
                    .entry(name.clone())
                    .or_default()
                    .set_head(head);
            }
            JournalEntry::RolloutMember {
                name,
                member,
                record,
            } => {
                self.rollouts
                    .entry(name.clone())
                    .or_default()
                    .members
                    .insert(member.clone(), (**record).clone());
            }
            JournalEntry::Depose { addr, instance } => {
                self.deposed.insert(addr.clone(), instance.clone());
            }
            JournalEntry::Undepose { addr } => {
                self.deposed.remove(addr);
            }
        }
    }
}

/// One change to state, recorded in the apply journal as soon as it happens.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum JournalEntry {
    /// A resource instance was created or updated.
    Put {
        /// Its address.
        addr: ResourceInstanceAddr,
        /// Its new state.
        instance: ResourceInstanceState,
    },
    /// A resource instance was destroyed.
    Remove {
        /// Its address.
        addr: ResourceInstanceAddr,
    },
    /// A resource instance moved (`moved` blocks, `state mv`).
    Rename {
        /// Old address.
        from: ResourceInstanceAddr,
        /// New address.
        to: ResourceInstanceAddr,
    },
    /// A create-before-destroy replacement made the new object; the old one waits to be
    /// deleted.
    Depose {
        /// The instance's address.
        addr: ResourceInstanceAddr,
        /// The old object.
        instance: ResourceInstanceState,
    },
    /// The old object of a replacement was deleted.
    Undepose {
        /// The instance's address.
        addr: ResourceInstanceAddr,
    },
    /// A rollout's whole record (written when an apply takes a rollout up).
    Rollout {
        /// The rollout's address.
        name: String,
        /// Its whole record.
        record: Box<crate::RolloutRecord>,
    },
    /// A rollout's record but its members changed (the wave cursor, an approval, a soak,
    /// the status): the entry's `members` is empty and the recorded ones are kept.
    #[serde(rename = "rollout_head")]
    RolloutHead {
        /// The rollout's address.
        name: String,
        /// The record without its members.
        head: Box<crate::RolloutRecord>,
    },
    /// One member of a rollout changed (it started, its gate moved, it passed or failed):
    /// one entry per change, so the journal grows with the members that move, not with
    /// the fleet each time.
    #[serde(rename = "rollout_member")]
    RolloutMember {
        /// The rollout's address.
        name: String,
        /// The member.
        member: String,
        /// Its record.
        record: Box<crate::MemberRecord>,
    },
}
