//! Domain blocks in a plan: which changes belong to `cluster.beijing`, `fleet.prod`, ...,
//! and a one-line summary of each (`fleet.prod: 2 members joined, 17 to add`), for the text
//! plan's groups, the markdown preview's summary table and the JSON plan.

use std::collections::BTreeSet;

use flotilla_config::addr::{InstanceKey, ResourceMode};
use flotilla_plan::{Action, ResourceChange};

/// The domain block a change belongs to (the first step of its module path, when that is a
/// domain block): `("fleet", "fleet.prod")`.
pub fn block_of(c: &ResourceChange) -> Option<(&str, &str)> {
    let step = c.addr.module.0.first()?;
    let (kind, _) = step.name.split_once('.')?;
    Some((kind, step.name.as_str()))
}

/// What a plan does to one domain block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSummary {
    /// `fleet.prod`.
    pub address: String,
    /// `fleet`.
    pub kind: String,
    /// Managed objects created, updated in place, destroyed, replaced.
    pub add: usize,
    /// Updated in place.
    pub change: usize,
    /// Destroyed.
    pub destroy: usize,
    /// Replaced.
    pub replace: usize,
    /// The members (for_each keys naming clusters) the changes touch, sorted.
    pub members: Vec<String>,
    /// What the block does, in its own words (`2 members joined`).
    pub what: Option<String>,
}

impl BlockSummary {
    /// `fleet.prod: 2 members joined, 17 to add on beijing and shanghai`.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = &self.what {
            parts.push(w.clone());
        }
        let mut counts = Vec::new();
        for (n, what) in [
            (self.add, "to add"),
            (self.change, "to change"),
            (self.replace, "to replace"),
            (self.destroy, "to destroy"),
        ] {
            if n > 0 {
                counts.push(format!("{n} {what}"));
            }
        }
        if !counts.is_empty() {
            parts.push(counts.join(", "));
        }
        let mut line = format!("{}: {}", self.address, parts.join(", "));
        if !self.members.is_empty() {
            line.push_str(&format!(" on {}", and_list(&self.members)));
        }
        line
    }
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A summary per domain block, in address order (changes that are no-ops are not counted).
pub fn summaries<'a>(changes: impl IntoIterator<Item = &'a ResourceChange>) -> Vec<BlockSummary> {
    let mut out: Vec<BlockSummary> = Vec::new();
    let mut members: Vec<BTreeSet<String>> = Vec::new();
    let mut joined: Vec<usize> = Vec::new();
    for c in changes {
        let Some((kind, address)) = block_of(c) else {
            continue;
        };
        if c.addr.resource.mode != ResourceMode::Managed || c.action == Action::NoOp {
            continue;
        }
        let i = match out.iter().position(|b| b.address == address) {
            Some(i) => i,
            None => {
                out.push(BlockSummary {
                    address: address.to_string(),
                    kind: kind.to_string(),
                    add: 0,
                    change: 0,
                    destroy: 0,
                    replace: 0,
                    members: Vec::new(),
                    what: None,
                });
                members.push(BTreeSet::new());
                joined.push(0);
                out.len() - 1
            }
        };
        let b = &mut out[i];
        match c.action {
            Action::Create => b.add += 1,
            Action::Update => b.change += 1,
            Action::Delete => b.destroy += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => b.replace += 1,
            Action::NoOp | Action::Read => {}
        }
        // Inside fleet-wide blocks, instance keys name members (`"beijing"`,
        // `"beijing/helm-controller"`).
        if kind != "cluster"
            && let InstanceKey::Str(k) = &c.addr.key
        {
            members[i].insert(k.split('/').next().unwrap_or(k).to_string());
        }
        if c.addr.resource.type_ == "karmada_cluster" && c.action == Action::Create {
            joined[i] += 1;
        }
        if kind == "cluster" && c.addr.resource.type_ == "capi_cluster" {
            b.what = Some(match c.action {
                Action::Create => "created with Cluster API".to_string(),
                Action::Delete => "deleted through Cluster API".to_string(),
                _ => "changed through Cluster API".to_string(),
            });
        }
        if kind == "cluster"
            && c.addr.resource.type_ == "capi_kubeadm_control_plane"
            && c.action == Action::Update
            && b.what.is_none()
        {
            b.what = Some("upgraded in place by Cluster API".to_string());
        }
    }
    for ((b, m), j) in out.iter_mut().zip(members).zip(joined) {
        b.members = m.into_iter().collect();
        if j > 0 {
            b.what = Some(format!(
                "{j} member{} joined",
                if j == 1 { "" } else { "s" }
            ));
        }
    }
    out
}
