//! The human-readable plan, in the shape Terraform users know.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use flotilla_config::addr::ResourceMode;
use flotilla_lang::{AttrPath, Value, values_equal};
use flotilla_plan::{Action, OutputChange, Plan, PlanMode, ResourceChange};
use flotilla_provider::ReplaceReason;

/// Presentation options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn sign(&self, sign: &str) -> String {
        let code = match sign.trim() {
            "+" => "32",
            "-" => "31",
            "~" => "33",
            "-/+" | "+/-" => "35",
            "<=" => "36",
            _ => return sign.to_string(),
        };
        self.paint(code, sign)
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "  +",
        Action::Update => "  ~",
        Action::Delete => "  -",
        Action::DeleteThenCreate => "-/+",
        Action::CreateThenDelete => "+/-",
        Action::Read => " <=",
        Action::NoOp => "   ",
    }
}

fn shown(c: &ResourceChange) -> bool {
    match c.action {
        Action::NoOp => c.prev_addr.is_some() || c.importing.is_some(),
        _ => true,
    }
}

/// Renders a plan as text: drift, the actions with attribute diffs, the summary line and
/// output changes.
pub fn render_plan(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            style.bold("Note: Objects have changed outside of flotilla")
        );
        out.push_str("flotilla detected the following changes made outside of flotilla since the last apply:\n\n");
        for c in &plan.drift {
            let header = match c.action {
                Action::Delete => format!("# {} has been deleted", c.addr),
                _ => format!("# {} has changed", c.addr),
            };
            let _ = writeln!(out, "  {}", style.bold(&header));
            resource_block(&mut out, c, style, true);
            out.push('\n');
        }
        if plan.mode == PlanMode::RefreshOnly {
            out.push_str("This is a refresh-only plan, so flotilla will not take any actions to undo these. Apply this\nplan to record the updated values in the flotilla state without changing any real objects.\n\n");
        } else {
            out.push_str("Unless you have made equivalent changes to your configuration, the plan below undoes them.\n\n");
        }
    }
    // Old objects an interrupted replacement left come last, each a deletion.
    let changes: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|c| shown(c))
        .chain(&plan.deposed)
        .collect();
    let outputs: Vec<&OutputChange> = plan
        .outputs
        .iter()
        .filter(|o| o.action != Action::NoOp)
        .collect();
    if changes.is_empty() && outputs.is_empty() {
        if plan.drift.is_empty() || plan.mode != PlanMode::RefreshOnly {
            let _ = writeln!(
                out,
                "{} Your infrastructure matches the configuration.",
                style.bold("No changes.")
            );
        }
        out.push_str(&crate::rollouts::waves_text(plan));
        return out;
    }
    if !changes.is_empty() {
        out.push_str("flotilla will perform the following actions");
        let used: BTreeSet<Action> = changes
            .iter()
            .map(|c| c.action)
            .filter(|a| *a != Action::NoOp)
            .collect();
        if !used.is_empty() {
            out.push_str(", marked with these symbols:\n");
            for a in &used {
                let what = match a {
                    Action::Create => "create",
                    Action::Update => "update in place",
                    Action::Delete => "destroy",
                    Action::DeleteThenCreate => "destroy and then create replacement",
                    Action::CreateThenDelete => "create replacement and then destroy",
                    Action::Read => "read (data sources)",
                    Action::NoOp => "",
                };
                let _ = writeln!(out, "{} {what}", style.sign(symbol(*a)));
            }
        } else {
            out.push_str(":\n");
        }
        out.push('\n');
        // Changes are sorted by address, so a domain block's objects are together: each
        // group opens with the block's one-line summary.
        let blocks = crate::blocks::summaries(changes.iter().copied());
        let mut current: Option<&str> = None;
        for c in &changes {
            let block = crate::blocks::block_of(c).map(|(_, a)| a);
            if block != current {
                if let Some(b) = block.and_then(|a| blocks.iter().find(|b| b.address == a)) {
                    let _ = writeln!(out, "{}\n", style.bold(&format!("── {}", b.line())));
                }
                current = block;
            }
            let deposed = plan.deposed.iter().any(|d| std::ptr::eq(d, *c));
            for line in header_lines(c, deposed) {
                let _ = writeln!(out, "  {}", style.bold(&line));
            }
            if c.action != Action::NoOp {
                resource_block(&mut out, c, style, false);
            }
            out.push('\n');
        }
        out.push_str(&crate::rollouts::waves_text(plan));
        let s = plan.summary();
        let _ = write!(out, "{}", style.bold("Plan:"));
        if s.import > 0 {
            let _ = write!(out, " {} to import,", s.import);
        }
        let _ = write!(
            out,
            " {} to add, {} to change, {} to destroy",
            s.add, s.change, s.destroy
        );
        if s.moved > 0 {
            let _ = write!(out, ", {} to move", s.moved);
        }
        out.push_str(".\n");
    }
    if !outputs.is_empty() {
        if !changes.is_empty() {
            out.push('\n');
        }
        out.push_str("Changes to Outputs:\n");
        let width = outputs.iter().map(|o| o.name.len()).max().unwrap_or(0);
        for o in outputs {
            let mut line = String::new();
            let sign = match o.action {
                Action::Create => "+",
                Action::Delete => "-",
                _ => "~",
            };
            let _ = write!(line, "  {} {:width$} = ", style.sign(sign), o.name);
            let show = |v: &Value| {
                if o.sensitive {
                    "(sensitive value)".to_string()
                } else {
                    inline(v)
                }
            };
            match (&o.before, &o.after) {
                (None, Some(a)) => line.push_str(&show(a)),
                (Some(b), None) => {
                    let _ = write!(line, "{} -> null", show(b));
                }
                (Some(b), Some(a)) => {
                    let _ = write!(line, "{} -> {}", show(b), show(a));
                }
                (None, None) => {}
            }
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// One change as plain text (its `#` header lines and attribute diff), as in the plan.
pub fn render_change(c: &ResourceChange) -> String {
    let style = Style { color: false };
    let mut out = String::new();
    for line in header_lines(c, false) {
        let _ = writeln!(out, "  {line}");
    }
    if c.action != Action::NoOp {
        resource_block(&mut out, c, style, false);
    }
    out
}

/// The top-level attributes whose values differ between before and after (sorted).
pub fn changed_attributes(c: &ResourceChange) -> Vec<String> {
    fn fields<'a>(
        v: &'a Option<Value>,
        empty: &'a BTreeMap<String, Value>,
    ) -> &'a BTreeMap<String, Value> {
        match v {
            Some(Value::Map(m)) => m,
            _ => empty,
        }
    }
    let empty = BTreeMap::new();
    let (b, a) = (fields(&c.before, &empty), fields(&c.after, &empty));
    let mut names: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|k| match (b.get(*k), a.get(*k)) {
            (Some(x), Some(y)) => !same(x, y),
            (None, Some(Value::Null)) | (Some(Value::Null), None) => false,
            _ => true,
        })
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A change's `#` lines; `deposed` for the deletion of an old object an interrupted
/// replacement left.
fn header_lines(c: &ResourceChange, deposed: bool) -> Vec<String> {
    let a = &c.addr;
    let mut lines = Vec::new();
    if let Some(prev) = &c.prev_addr {
        lines.push(format!("# {prev} has moved to {a}"));
    }
    let main = match c.action {
        Action::Create => Some(format!("# {a} will be created")),
        Action::Update => Some(format!("# {a} will be updated in place")),
        Action::DeleteThenCreate | Action::CreateThenDelete => {
            Some(format!("# {a} must be replaced"))
        }
        Action::Delete if deposed => Some(format!("# {a} (deposed object) will be destroyed")),
        Action::Delete => Some(format!("# {a} will be destroyed")),
        Action::Read => Some(format!("# {a} will be read during apply")),
        Action::NoOp => c
            .importing
            .as_ref()
            .map(|_| format!("# {a} will be imported")),
    };
    lines.extend(main);
    if let Some(id) = &c.importing {
        lines.push(format!("# (imported from {id:?})"));
    }
    if let Some(reason) = &c.reason
        && c.action != Action::NoOp
    {
        lines.push(format!("# (because {reason})"));
    }
    if c.action != Action::NoOp {
        for note in &c.notes {
            lines.push(format!("# ({note})"));
        }
    }
    if c.action.is_replace() {
        for r in replace_reasons(c) {
            if r.path.0.is_empty() {
                lines.push(format!("# ({})", r.reason));
            } else {
                lines.push(format!("# ({}: {})", r.path, r.reason));
            }
        }
    }
    lines
}

/// The replace reasons worth showing: not empty, and not the change's own reason again.
pub(crate) fn replace_reasons(c: &ResourceChange) -> impl Iterator<Item = &ReplaceReason> {
    c.replace_reasons
        .iter()
        .filter(|r| !r.reason.is_empty() && c.reason.as_deref() != Some(r.reason.as_str()))
}

/// Renders a value on one line where possible (sensitive values redacted).
pub(crate) fn inline(v: &Value) -> String {
    match v {
        Value::Sensitive(_) => "(sensitive value)".into(),
        Value::Unknown => "(known after apply)".into(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => flotilla_config::addr::quote(s),
        Value::List(items) | Value::Set(items) if items.is_empty() => "[]".into(),
        Value::Map(m) if m.is_empty() => "{}".into(),
        Value::List(items) | Value::Set(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn key(k: &str) -> String {
    if flotilla_config::is_identifier(k) {
        k.to_string()
    } else {
        flotilla_config::addr::quote(k)
    }
}

fn resource_block(out: &mut String, c: &ResourceChange, style: Style, drift: bool) {
    let r = &c.addr.resource;
    let kind = if r.mode == ResourceMode::Data {
        "data"
    } else {
        "resource"
    };
    let action = if drift && c.action == Action::Delete {
        Action::Delete
    } else if drift {
        Action::Update
    } else {
        c.action
    };
    let _ = writeln!(
        out,
        "{} {kind} \"{}\" \"{}\" {{",
        style.sign(symbol(action)),
        r.type_,
        r.name
    );
    let before = if matches!(action, Action::Create | Action::Read) {
        None
    } else {
        c.before.as_ref()
    };
    let after = if action == Action::Delete {
        None
    } else {
        c.after.as_ref()
    };
    let forces: Vec<&AttrPath> = c.replace_reasons.iter().map(|r| &r.path).collect();
    let hidden = object_diff(
        out,
        6,
        before,
        after,
        style,
        &forces,
        &AttrPath::default(),
        action,
    );
    if hidden > 0 {
        let _ = writeln!(
            out,
            "{}# ({hidden} unchanged attribute{} hidden)",
            " ".repeat(8),
            if hidden == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "    }}");
}

/// Writes the attribute lines of an object diff; returns how many unchanged ones were hidden.
#[allow(clippy::too_many_arguments)]
fn object_diff(
    out: &mut String,
    indent: usize,
    before: Option<&Value>,
    after: Option<&Value>,
    style: Style,
    forces: &[&AttrPath],
    path: &AttrPath,
    action: Action,
) -> usize {
    let empty = std::collections::BTreeMap::new();
    let bm = match before.map(Value::shallow_unmark) {
        Some(Value::Map(m)) => m,
        _ => &empty,
    };
    let am = match after.map(Value::shallow_unmark) {
        Some(Value::Map(m)) => m,
        _ => &empty,
    };
    let keys: BTreeSet<&String> = bm.keys().chain(am.keys()).collect();
    let mut lines: Vec<(String, String, String)> = Vec::new(); // (sign, key, rest)
    let mut hidden = 0;
    for k in keys {
        let (b, a) = (
            bm.get(k).filter(|v| !v.is_null()),
            am.get(k).filter(|v| !v.is_null()),
        );
        let p = path.key(k.clone());
        let force = if forces.iter().any(|f| **f == p) {
            " # forces replacement"
        } else {
            ""
        };
        match (b, a) {
            (None, None) => {}
            (None, Some(a)) => lines.push((
                "+".into(),
                key(k),
                format!("{}{force}", nested(a, "+", indent + 4, style)),
            )),
            (Some(b), None) => lines.push((
                "-".into(),
                key(k),
                format!("{} -> null{force}", nested(b, "-", indent + 4, style)),
            )),
            (Some(b), Some(a)) if same(b, a) => {
                if action == Action::Update || action.is_replace() {
                    hidden += 1;
                } else {
                    lines.push((" ".into(), key(k), inline(a)));
                }
            }
            (Some(b), Some(a)) => {
                let rest = match (
                    b.shallow_unmark(),
                    a.shallow_unmark(),
                    b.is_sensitive() || a.is_sensitive(),
                ) {
                    (_, _, true) => "(sensitive value)".to_string(),
                    (Value::Map(_), Value::Map(_), false) => {
                        let mut inner = String::from("{\n");
                        let h = object_diff(
                            &mut inner,
                            indent + 4,
                            Some(b),
                            Some(a),
                            style,
                            forces,
                            &p,
                            Action::Update,
                        );
                        hidden_note(&mut inner, indent + 6, h);
                        let _ = write!(inner, "{}}}", " ".repeat(indent + 2));
                        inner
                    }
                    (Value::List(x), Value::List(y), false) => {
                        list_diff(x, y, indent, style, forces, &p)
                    }
                    (Value::String(x), Value::String(y), false)
                        if x.contains('\n') || y.contains('\n') =>
                    {
                        text_diff(x, y, indent, style)
                    }
                    _ => format!("{} -> {}", inline(b), inline(a)),
                };
                lines.push(("~".into(), key(k), format!("{rest}{force}")));
            }
        }
    }
    let width = lines
        .iter()
        .map(|(_, k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (sign, k, rest) in lines {
        let pad = width - k.chars().count();
        let _ = writeln!(
            out,
            "{}{} {k}{} = {rest}",
            " ".repeat(indent),
            style.sign(&sign),
            " ".repeat(pad)
        );
    }
    hidden
}

/// `# (N unchanged element(s) hidden)` at `indent`, when N > 0.
fn hidden_note(out: &mut String, indent: usize, n: usize) {
    if n > 0 {
        let _ = writeln!(
            out,
            "{}# ({n} unchanged element{} hidden)",
            " ".repeat(indent),
            if n == 1 { "" } else { "s" }
        );
    }
}

fn same(a: &Value, b: &Value) -> bool {
    a.is_sensitive() == b.is_sensitive()
        && !a.contains_unknown()
        && !b.contains_unknown()
        && values_equal(a, b)
}

/// A value after `+` or `-`, spread over lines when it is a non-empty collection.
fn nested(v: &Value, sign: &str, indent: usize, style: Style) -> String {
    match v {
        Value::Map(m) if !m.is_empty() => {
            let mut s = String::from("{\n");
            let width = m.keys().map(|k| key(k).chars().count()).max().unwrap_or(0);
            for (k, x) in m {
                let kk = key(k);
                let _ = writeln!(
                    s,
                    "{}{} {kk}{} = {}",
                    " ".repeat(indent),
                    style.sign(sign),
                    " ".repeat(width - kk.chars().count()),
                    nested(x, sign, indent + 4, style)
                );
            }
            let _ = write!(s, "{}}}", " ".repeat(indent - 2));
            s
        }
        Value::List(items) | Value::Set(items)
            if !items.is_empty()
                && items
                    .iter()
                    .any(|i| matches!(i, Value::Map(_) | Value::List(_))) =>
        {
            let mut s = String::from("[\n");
            for x in items {
                let _ = writeln!(
                    s,
                    "{}{} {},",
                    " ".repeat(indent),
                    style.sign(sign),
                    nested(x, sign, indent + 4, style)
                );
            }
            let _ = write!(s, "{}]", " ".repeat(indent - 2));
            s
        }
        Value::String(text) if text.contains('\n') => {
            let mut s = String::from("<<-EOT\n");
            for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
                let _ = writeln!(s, "{}{line}", " ".repeat(indent + 2));
            }
            let _ = write!(s, "{}EOT", " ".repeat(indent));
            s
        }
        other => inline(other),
    }
}

/// Lists of the same length whose elements are objects: compared element by element, so a
/// change deep in one element shows as just that change (a route's weights), not as the
/// whole element removed and added.
fn positional_diff(
    x: &[Value],
    y: &[Value],
    indent: usize,
    style: Style,
    forces: &[&AttrPath],
    path: &AttrPath,
) -> Option<String> {
    let objects = x.len() == y.len()
        && x.iter().zip(y).all(|(a, b)| {
            matches!(
                (a.shallow_unmark(), b.shallow_unmark()),
                (Value::Map(_), Value::Map(_))
            ) && !a.is_sensitive()
                && !b.is_sensitive()
        });
    if !objects {
        return None;
    }
    let mut s = String::from("[\n");
    let mut unchanged = 0;
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        if same(a, b) {
            unchanged += 1;
            continue;
        }
        let mut inner = String::new();
        let hidden = object_diff(
            &mut inner,
            indent + 8,
            Some(a),
            Some(b),
            style,
            forces,
            &path.index(i),
            Action::Update,
        );
        let _ = writeln!(s, "{}{} {{", " ".repeat(indent + 4), style.sign("~"));
        s.push_str(&inner);
        hidden_note(&mut s, indent + 10, hidden);
        let _ = writeln!(s, "{}}},", " ".repeat(indent + 6));
    }
    hidden_note(&mut s, indent + 6, unchanged);
    let _ = write!(s, "{}]", " ".repeat(indent + 2));
    Some(s)
}

fn list_diff(
    x: &[Value],
    y: &[Value],
    indent: usize,
    style: Style,
    forces: &[&AttrPath],
    path: &AttrPath,
) -> String {
    if let Some(s) = positional_diff(x, y, indent, style, forces, path) {
        return s;
    }
    let a: Vec<String> = x.iter().map(inline).collect();
    let b: Vec<String> = y.iter().map(inline).collect();
    let mut s = String::from("[\n");
    let (a, b): (Vec<&str>, Vec<&str>) = (
        a.iter().map(String::as_str).collect(),
        b.iter().map(String::as_str).collect(),
    );
    let diff = similar::TextDiff::from_slices(&a, &b);
    let mut unchanged = 0;
    for ch in diff.iter_all_changes() {
        let sign = match ch.tag() {
            similar::ChangeTag::Equal => {
                unchanged += 1;
                continue;
            }
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
        };
        let _ = writeln!(
            s,
            "{}{} {},",
            " ".repeat(indent + 4),
            style.sign(sign),
            ch.value()
        );
    }
    hidden_note(&mut s, indent + 6, unchanged);
    let _ = write!(s, "{}]", " ".repeat(indent + 2));
    s
}

fn text_diff(x: &str, y: &str, indent: usize, style: Style) -> String {
    let mut s = String::from("<<-EOT\n");
    let diff = similar::TextDiff::from_lines(x, y);
    for ch in diff.iter_all_changes() {
        let sign = match ch.tag() {
            similar::ChangeTag::Equal => " ",
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
        };
        let line = ch.value().strip_suffix('\n').unwrap_or(ch.value());
        let _ = writeln!(s, "{}{} {line}", " ".repeat(indent + 4), style.sign(sign));
    }
    let _ = write!(s, "{}EOT", " ".repeat(indent + 2));
    s
}

/// Renders `before -> after` for one value (used by `flotilla output` and tests).
pub fn render_value_diff(before: &Value, after: &Value) -> String {
    if same(before, after) {
        inline(after)
    } else {
        format!("{} -> {}", inline(before), inline(after))
    }
}
