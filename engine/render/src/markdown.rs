//! Plans as markdown for pull-request comments (`flotilla show -format markdown FILE`).
//!
//! A comment opens with a one-line verdict and a summary table (per module or per cluster),
//! calls out destroys and replacements first with their reasons, then gives a collapsible diff
//! per resource and a Mermaid picture of the changed resources and what they depend on.
//!
//! Comments have a size limit (GitHub's is 65,536 characters). When the full comment would not
//! fit, it degrades in fixed steps, each saying so: diffs collapse to the names of changed
//! attributes, then only addresses are listed, then only counts are shown.
//!
//! **Invariant:** values come only from the text renderer, so sensitive values are redacted
//! exactly as in the terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use flotilla_config::addr::ResourceMode;
use flotilla_plan::{Action, Plan, PlanMode, ResourceChange};

use crate::plan::{changed_attributes, inline, render_change, replace_reasons};

/// How summary rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One row per module instance (`(root)` for the root module).
    #[default]
    Module,
    /// One row per provider configuration: for Kubernetes providers, per cluster.
    Cluster,
}

/// What the comment looks like.
#[derive(Debug, Clone)]
pub struct MarkdownOptions {
    /// The most characters the comment may have.
    pub max_chars: usize,
    /// Summary rows per module or per cluster.
    pub group_by: GroupBy,
    /// The heading (e.g. "flotilla plan for `prod`").
    pub title: String,
    /// The command that shows everything, named when the comment is cut down.
    pub full_command: String,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            max_chars: 65_536,
            group_by: GroupBy::Module,
            title: "flotilla plan".into(),
            full_command: "flotilla show PLANFILE".into(),
        }
    }
}

/// How much detail a comment carries, from most to least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Full,
    Collapsed,
    Addresses,
    Counts,
}

/// Graphs larger than this are left out: they would not render legibly.
const MAX_GRAPH_NODES: usize = 150;

/// Renders a plan as a pull-request comment no longer than `opts.max_chars` characters.
pub fn plan_markdown(plan: &Plan, opts: &MarkdownOptions) -> String {
    let full = render(plan, opts, Level::Full, 0);
    let full_len = full.chars().count();
    if full_len <= opts.max_chars {
        return full;
    }
    for level in [Level::Collapsed, Level::Addresses, Level::Counts] {
        let text = render(plan, opts, level, full_len);
        if text.chars().count() <= opts.max_chars {
            return text;
        }
    }
    // Even the counts do not fit (a tiny limit or thousands of modules): cut at a line.
    let text = render(plan, opts, Level::Counts, full_len);
    let mut out = String::new();
    for line in text.lines() {
        if out.chars().count() + line.chars().count() + 40 > opts.max_chars {
            out.push_str("\n… (cut to fit the size limit)\n");
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn changes(plan: &Plan) -> Vec<&ResourceChange> {
    plan.changes.iter().filter(|c| c.is_change()).collect()
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::DeleteThenCreate | Action::CreateThenDelete => "replace",
        Action::Delete => "destroy",
        Action::Read => "read",
        Action::NoOp => "no-op",
    }
}

fn sign(c: &ResourceChange) -> &'static str {
    match c.action {
        Action::Create => "+",
        Action::Update => "~",
        Action::DeleteThenCreate => "-/+",
        Action::CreateThenDelete => "+/-",
        Action::Delete => "-",
        Action::Read => "<=",
        Action::NoOp if c.prev_addr.is_some() => "→",
        Action::NoOp => "↓",
    }
}

fn what(c: &ResourceChange) -> String {
    let mut parts = Vec::new();
    if c.action != Action::NoOp {
        parts.push(verb(c.action).to_string());
    }
    if let Some(prev) = &c.prev_addr {
        parts.push(format!("moved from `{prev}`"));
    }
    if c.importing.is_some() {
        parts.push("import".into());
    }
    parts.join(", ")
}

/// Why a destroy or replacement happens, in one line.
fn reasons(c: &ResourceChange) -> String {
    let mut out: Vec<String> = Vec::new();
    if let Some(r) = &c.reason {
        out.push(r.clone());
    }
    for r in replace_reasons(c) {
        if r.path.0.is_empty() {
            out.push(r.reason.clone());
        } else {
            out.push(format!("`{}`: {}", r.path, r.reason));
        }
    }
    out.join("; ")
}

/// Escapes text for a table cell or list item.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[derive(Default)]
struct Counts {
    add: usize,
    change: usize,
    replace: usize,
    destroy: usize,
    moved: usize,
    import: usize,
}

impl Counts {
    fn count(&mut self, c: &ResourceChange) {
        if c.mode() != ResourceMode::Managed {
            return;
        }
        match c.action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => self.replace += 1,
            Action::Delete => self.destroy += 1,
            Action::NoOp | Action::Read => {}
        }
        if c.prev_addr.is_some() {
            self.moved += 1;
        }
        if c.importing.is_some() {
            self.import += 1;
        }
    }
}

fn verdict(plan: &Plan, all: &Counts) -> String {
    if !plan.has_changes() {
        return "**No changes.** The infrastructure matches the configuration.".into();
    }
    if plan.mode == PlanMode::RefreshOnly {
        return format!(
            "**Refresh only:** {} object(s) changed outside flotilla will be recorded; nothing else changes.",
            plan.drift.len()
        );
    }
    let mut parts = vec![
        format!("{} to add", all.add + all.replace),
        format!("{} to change", all.change),
        format!("{} to destroy", all.destroy + all.replace),
    ];
    if all.import > 0 {
        parts.insert(0, format!("{} to import", all.import));
    }
    if all.moved > 0 {
        parts.push(format!("{} to move", all.moved));
    }
    let mut line = format!("**Plan:** {}.", parts.join(", "));
    if all.destroy + all.replace > 0 {
        let _ = write!(
            line,
            " ⚠️ **{} destroyed** ({} replaced).",
            all.destroy + all.replace,
            all.replace
        );
    }
    line
}

fn render(plan: &Plan, opts: &MarkdownOptions, level: Level, full_len: usize) -> String {
    let changes = changes(plan);
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", opts.title);
    let mut all = Counts::default();
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    for c in &changes {
        all.count(c);
        let group = match opts.group_by {
            GroupBy::Module if c.addr.module.is_root() => "(root)".to_string(),
            // A domain block is one row, whatever modules it has inside.
            GroupBy::Module if crate::blocks::block_of(c).is_some() => crate::blocks::block_of(c)
                .map(|(_, a)| a.to_string())
                .unwrap_or_default(),
            GroupBy::Module => c.addr.module.to_string(),
            GroupBy::Cluster => c.provider.to_string(),
        };
        groups.entry(group).or_default().count(c);
    }
    let _ = writeln!(out, "{}\n", verdict(plan, &all));
    if level > Level::Full {
        let what = match level {
            Level::Collapsed => "diffs are collapsed to the names of the attributes that change",
            Level::Addresses => "only the addresses of the changed resources are listed",
            _ => "only counts are shown",
        };
        let _ = writeln!(
            out,
            "> [!NOTE]\n> The full plan ({full_len} characters) is longer than this comment may be ({} characters): {what}. Run `{}` for everything.\n",
            opts.max_chars, opts.full_command
        );
    }
    if !groups.is_empty() {
        let first = match opts.group_by {
            GroupBy::Module => "module",
            GroupBy::Cluster => "cluster (provider)",
        };
        let extra = [(all.moved > 0, "move"), (all.import > 0, "import")];
        let _ = write!(out, "| {first} | add | change | replace | destroy |");
        for (on, name) in extra {
            if on {
                let _ = write!(out, " {name} |");
            }
        }
        let _ = write!(out, "\n| --- | ---: | ---: | ---: | ---: |");
        for (on, _) in extra {
            if on {
                out.push_str(" ---: |");
            }
        }
        out.push('\n');
        let blocks = crate::blocks::summaries(changes.iter().copied());
        for (g, n) in &groups {
            let what = blocks
                .iter()
                .find(|b| &b.address == g)
                .and_then(|b| b.what.as_ref())
                .map(|w| format!(" ({})", cell(w)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "| `{}`{what} | {} | {} | {} | {} |",
                cell(g),
                n.add,
                n.change,
                n.replace,
                n.destroy
            );
            for (on, name) in extra {
                if on {
                    let v = if name == "move" { n.moved } else { n.import };
                    let _ = write!(out, " {v} |");
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&crate::rollouts::waves_markdown(plan));
    let dangerous: Vec<&&ResourceChange> = changes
        .iter()
        .filter(|c| c.action == Action::Delete || c.action.is_replace())
        .collect();
    if !dangerous.is_empty() {
        let _ = writeln!(out, "#### ⚠️ Destroyed or replaced\n");
        if level == Level::Counts {
            let _ = writeln!(
                out,
                "{} resource instance(s); see the full plan.\n",
                dangerous.len()
            );
        } else {
            for c in &dangerous {
                let why = reasons(c);
                let why = if why.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", cell(&why))
                };
                let _ = writeln!(out, "- **{}** `{}`{why}", verb(c.action), c.addr);
            }
            out.push('\n');
        }
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(out, "#### Changed outside flotilla\n");
        if level == Level::Counts {
            let _ = writeln!(out, "{} resource instance(s).\n", plan.drift.len());
        } else {
            for c in &plan.drift {
                let how = if c.action == Action::Delete {
                    "deleted"
                } else {
                    "changed"
                };
                let _ = writeln!(out, "- `{}` {how}", c.addr);
            }
            out.push('\n');
        }
    }
    if !changes.is_empty() && level != Level::Counts {
        let _ = writeln!(out, "#### Changes\n");
        for c in &changes {
            match level {
                Level::Full => {
                    let _ = writeln!(
                        out,
                        "<details><summary><code>{} {}</code> {}</summary>\n\n```diff\n{}```\n\n</details>",
                        sign(c),
                        html(&c.addr.to_string()),
                        html(&what(c)),
                        diff_lines(&render_change(c))
                    );
                }
                Level::Collapsed => {
                    let attrs = if matches!(c.action, Action::Update) || c.action.is_replace() {
                        let names = changed_attributes(c);
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ": {}",
                                names
                                    .iter()
                                    .map(|n| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, "- `{} {}` {}{attrs}", sign(c), c.addr, what(c));
                }
                _ => {
                    let _ = writeln!(out, "- `{} {}` {}", sign(c), c.addr, what(c));
                }
            }
        }
        out.push('\n');
    }
    let outputs: Vec<_> = plan
        .outputs
        .iter()
        .filter(|o| o.action != Action::NoOp)
        .collect();
    if !outputs.is_empty() {
        let _ = writeln!(out, "#### Outputs\n");
        if level == Level::Counts {
            let _ = writeln!(out, "{} output(s) change.\n", outputs.len());
        } else {
            for o in outputs {
                let shown = |v: &Option<flotilla_lang::Value>| match v {
                    _ if o.sensitive => "(sensitive value)".to_string(),
                    Some(v) => inline(v),
                    None => "null".into(),
                };
                if level == Level::Full {
                    let _ = writeln!(
                        out,
                        "- `{}`: {} → {}",
                        o.name,
                        cell(&shown(&o.before)),
                        cell(&shown(&o.after))
                    );
                } else {
                    let _ = writeln!(out, "- `{}` {}", o.name, verb(o.action));
                }
            }
            out.push('\n');
        }
    }
    if level == Level::Full
        && let Some(graph) = mermaid(&changes)
    {
        let _ = writeln!(out, "#### Graph\n\n```mermaid\n{graph}```\n");
    }
    let _ = writeln!(
        out,
        "<sub>flotilla {} · sensitive values are redacted</sub>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// Escapes text for HTML (inside `<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Moves each line's change symbol to the first column, where a `diff` block colours it:
/// `+` added, `-` removed, `!` changed (`~` and replacements).
fn diff_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.strip_prefix("  ").unwrap_or(line);
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let (mark, rest) = if let Some(r) = body
            .strip_prefix("-/+")
            .or_else(|| body.strip_prefix("+/-"))
        {
            ("!", format!("{}   {r}", " ".repeat(indent)))
        } else if let Some(r) = body.strip_prefix('+') {
            ("+", format!("{} {r}", " ".repeat(indent)))
        } else if let Some(r) = body.strip_prefix('-') {
            ("-", format!("{} {r}", " ".repeat(indent)))
        } else if let Some(r) = body.strip_prefix('~') {
            ("!", format!("{} {r}", " ".repeat(indent)))
        } else {
            (" ", line.to_string())
        };
        // A fence inside a value would end the block early: break it with a zero-width space.
        let _ = writeln!(out, "{mark}{}", rest.replace("```", "`\u{200B}``"));
    }
    out
}

/// A Mermaid flowchart of the changed resources and the resources they depend on, coloured
/// by action; `None` when there is nothing to draw or too much to draw legibly.
fn mermaid(changes: &[&ResourceChange]) -> Option<String> {
    let mut nodes: BTreeMap<String, Action> = BTreeMap::new();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    for c in changes {
        let me = c.addr.config_addr();
        let entry = nodes.entry(me.clone()).or_insert(c.action);
        if c.action.weight() > entry.weight() {
            *entry = c.action;
        }
        for d in &c.dependencies {
            edges.insert((d.clone(), me.clone()));
        }
    }
    for (from, _) in &edges {
        nodes.entry(from.clone()).or_insert(Action::NoOp);
    }
    if nodes.is_empty() || nodes.len() > MAX_GRAPH_NODES {
        return None;
    }
    let ids: BTreeMap<&String, usize> = nodes.keys().enumerate().map(|(i, n)| (n, i)).collect();
    let mut out = String::from("flowchart LR\n");
    for (name, action) in &nodes {
        let _ = writeln!(
            out,
            "  n{}[\"{}\"]:::{}",
            ids[name],
            name.replace('"', "#quot;"),
            action.class()
        );
    }
    for (a, b) in &edges {
        let _ = writeln!(out, "  n{} --> n{}", ids[a], ids[b]);
    }
    out.push_str(flotilla_graph::export::MERMAID_CLASSES);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_lang::Value;

    fn update(i: usize) -> ResourceChange {
        let obj = |v: &str| {
            Value::Map(
                [
                    ("input".to_string(), Value::String(v.into())),
                    ("output".to_string(), Value::String(v.into())),
                ]
                .into(),
            )
        };
        ResourceChange {
            addr: format!("builtin_data.r[{i}]").parse().unwrap(),
            prev_addr: None,
            provider: "provider.builtin".parse().unwrap(),
            action: Action::Update,
            before: Some(obj("old")),
            after: Some(obj("new")),
            replace_reasons: Vec::new(),
            reason: None,
            dependencies: vec!["builtin_data.base".into()],
            create_before_destroy: false,
            importing: None,
            notes: Vec::new(),
        }
    }

    fn plan(n: usize) -> Plan {
        Plan {
            changes: (0..n).map(update).collect(),
            ..Plan::default()
        }
    }

    #[test]
    fn each_level_is_shorter_and_the_longest_that_fits_is_chosen() {
        let p = plan(400);
        let opts = MarkdownOptions::default();
        let len = |level| render(&p, &opts, level, 1).chars().count();
        let (full, collapsed, addresses, counts) = (
            len(Level::Full),
            len(Level::Collapsed),
            len(Level::Addresses),
            len(Level::Counts),
        );
        assert!(full > collapsed && collapsed > addresses && addresses > counts);
        let with_limit = |max_chars| {
            plan_markdown(
                &p,
                &MarkdownOptions {
                    max_chars,
                    ..MarkdownOptions::default()
                },
            )
        };
        assert!(!with_limit(full).contains("[!NOTE]"));
        assert!(with_limit(full - 1).contains("diffs are collapsed"));
        assert!(with_limit(collapsed - 1).contains("only the addresses"));
        assert!(with_limit(addresses - 1).contains("only counts are shown"));
        let tiny = with_limit(300);
        assert!(tiny.chars().count() <= 300, "{tiny}");
        assert!(tiny.contains("cut to fit"), "{tiny}");
    }

    #[test]
    fn collapsed_lists_changed_attributes_and_full_has_diffs_and_a_graph() {
        let p = plan(2);
        let full = plan_markdown(&p, &MarkdownOptions::default());
        assert!(
            full.contains("<details><summary><code>~ builtin_data.r[0]</code> update</summary>"),
            "{full}"
        );
        assert!(
            full.contains("!      input  = \"old\" -> \"new\""),
            "{full}"
        );
        assert!(
            full.contains("n0[\"builtin_data.base\"]:::unchanged"),
            "{full}"
        );
        assert!(full.contains("n1[\"builtin_data.r\"]:::update"), "{full}");
        assert!(full.contains("n0 --> n1"), "{full}");
        let collapsed = render(&p, &MarkdownOptions::default(), Level::Collapsed, 9);
        assert!(
            collapsed.contains("- `~ builtin_data.r[1]` update: `input`, `output`"),
            "{collapsed}"
        );
    }

    #[test]
    fn no_changes_says_so() {
        let md = plan_markdown(&Plan::default(), &MarkdownOptions::default());
        assert!(md.contains("**No changes.**"), "{md}");
        assert!(!md.contains("| module |"), "{md}");
    }
}
