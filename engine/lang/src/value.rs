//! Dynamic values with Unknown and Sensitive marks.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::Number;

/// A value of the language.
///
/// `Unknown` stands for a value that will only be known after apply; `Sensitive` wraps a value
/// that must never be shown. Both may appear at any depth.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`
    #[default]
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number: arbitrary precision, as Terraform's (see [`Number`]).
    Number(Number),
    /// A string.
    String(String),
    /// A list or tuple.
    List(Vec<Value>),
    /// A set: sorted, without duplicates.
    Set(Vec<Value>),
    /// A map or object, keys sorted.
    Map(BTreeMap<String, Value>),
    /// Not known until apply.
    Unknown,
    /// A value that must not be shown.
    Sensitive(Box<Value>),
}

impl Value {
    /// An integer value.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::from(i))
    }

    /// A number from a float (53 bits, as Terraform's float functions give them).
    pub fn float(f: f64) -> Value {
        Value::Number(Number::from_f64(f))
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An object from pairs.
    pub fn object<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A set from values: sorted and deduplicated.
    pub fn set(mut items: Vec<Value>) -> Value {
        items.sort_by(compare);
        items.dedup();
        Value::Set(items)
    }

    /// Marks this value sensitive (idempotent).
    pub fn sensitive(self) -> Value {
        match self {
            Value::Sensitive(_) => self,
            v => Value::Sensitive(Box::new(v)),
        }
    }

    /// Whether the value itself (not something inside it) is unknown.
    pub fn is_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::Sensitive(v) => v.is_unknown(),
            _ => false,
        }
    }

    /// Whether the value is null (looking through the sensitive mark).
    pub fn is_null(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Sensitive(v) => v.is_null(),
            _ => false,
        }
    }

    /// Whether any part of the value is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::Sensitive(v) => v.contains_unknown(),
            Value::List(items) | Value::Set(items) => items.iter().any(Value::contains_unknown),
            Value::Map(m) => m.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    /// Whether the value is marked sensitive at the top.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, Value::Sensitive(_))
    }

    /// Whether any part of the value is sensitive.
    pub fn contains_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(items) | Value::Set(items) => items.iter().any(Value::contains_sensitive),
            Value::Map(m) => m.values().any(Value::contains_sensitive),
            _ => false,
        }
    }

    /// Removes the sensitive mark everywhere; returns the bare value and whether any mark was seen.
    pub fn unmark(self) -> (Value, bool) {
        match self {
            Value::Sensitive(v) => (v.unmark().0, true),
            Value::List(items) => {
                let (items, s) = unmark_all(items);
                (Value::List(items), s)
            }
            Value::Set(items) => {
                let (items, s) = unmark_all(items);
                (Value::Set(items), s)
            }
            Value::Map(m) => {
                let mut any = false;
                let m = m
                    .into_iter()
                    .map(|(k, v)| {
                        let (v, s) = v.unmark();
                        any |= s;
                        (k, v)
                    })
                    .collect();
                (Value::Map(m), any)
            }
            v => (v, false),
        }
    }

    /// The value with the top-level sensitive mark removed (inner marks stay).
    pub fn shallow_unmark(&self) -> &Value {
        match self {
            Value::Sensitive(v) => v.shallow_unmark(),
            v => v,
        }
    }

    /// The element or attribute at `key`, looking through a sensitive mark.
    pub fn get_attr(&self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => m.get(key).cloned(),
            Value::Sensitive(v) => v.get_attr(key).map(Value::sensitive),
            Value::Unknown => Some(Value::Unknown),
            _ => None,
        }
    }

    /// A short type name for messages: `string`, `number`, `list`, `object`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
            Value::Sensitive(v) => v.type_name(),
        }
    }

    /// Converts plain JSON (as stored in state) into a value.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(number_from_json(n)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to plain JSON, dropping marks: unknowns become `null`, sensitive values are kept.
    ///
    /// Callers that show output use [`Value::to_json_parts`] instead so sensitive values can be
    /// redacted.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) | Value::Set(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Sensitive(v) => v.to_json(),
        }
    }

    /// Splits into plain JSON plus two masks in Terraform's style: `unknown` and `sensitive`
    /// hold `true` at every marked path (and mirror the structure of containers with a marked
    /// part); elsewhere they are `false`.
    pub fn to_json_parts(&self) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
        let json = self.to_json();
        (
            json,
            mask(self, &|v| matches!(v, Value::Unknown)),
            mask(self, &|v| v.is_sensitive()),
        )
    }

    /// Rebuilds a value from [`Value::to_json_parts`] output.
    pub fn from_json_parts(
        json: &serde_json::Value,
        unknown: &serde_json::Value,
        sensitive: &serde_json::Value,
    ) -> Value {
        let base = if unknown == &serde_json::Value::Bool(true) {
            Value::Unknown
        } else {
            match json {
                serde_json::Value::Array(a) => Value::List(
                    a.iter()
                        .enumerate()
                        .map(|(i, j)| {
                            Value::from_json_parts(
                                j,
                                &child_mask(unknown, i),
                                &child_mask(sensitive, i),
                            )
                        })
                        .collect(),
                ),
                serde_json::Value::Object(o) => Value::Map(
                    o.iter()
                        .map(|(k, j)| {
                            (
                                k.clone(),
                                Value::from_json_parts(
                                    j,
                                    unknown.get(k).unwrap_or(&serde_json::Value::Bool(false)),
                                    sensitive.get(k).unwrap_or(&serde_json::Value::Bool(false)),
                                ),
                            )
                        })
                        .collect(),
                ),
                j => Value::from_json(j),
            }
        };
        if sensitive == &serde_json::Value::Bool(true) {
            base.sensitive()
        } else {
            base
        }
    }

    /// The value with every unknown part replaced by the corresponding part of `known`.
    pub fn fill_unknowns(&self, known: &Value) -> Value {
        match (self, known) {
            (Value::Unknown, k) => k.clone(),
            (Value::Sensitive(v), k) => v.fill_unknowns(k.shallow_unmark()).sensitive(),
            (Value::List(a), Value::List(b)) if a.len() == b.len() => {
                Value::List(a.iter().zip(b).map(|(x, y)| x.fill_unknowns(y)).collect())
            }
            (Value::Map(a), Value::Map(b)) => Value::Map(
                a.iter()
                    .map(|(k, v)| {
                        let filled = match b.get(k) {
                            Some(bv) => v.fill_unknowns(bv),
                            None => v.clone(),
                        };
                        (k.clone(), filled)
                    })
                    .collect(),
            ),
            (v, _) => v.clone(),
        }
    }
}

fn unmark_all(items: Vec<Value>) -> (Vec<Value>, bool) {
    let mut any = false;
    let items = items
        .into_iter()
        .map(|v| {
            let (v, s) = v.unmark();
            any |= s;
            v
        })
        .collect();
    (items, any)
}

fn child_mask(mask: &serde_json::Value, i: usize) -> serde_json::Value {
    match mask {
        serde_json::Value::Array(a) => a.get(i).cloned().unwrap_or(serde_json::Value::Bool(false)),
        _ => serde_json::Value::Bool(false),
    }
}

fn mask(v: &Value, is_marked: &dyn Fn(&Value) -> bool) -> serde_json::Value {
    if is_marked(v) {
        return serde_json::Value::Bool(true);
    }
    match v {
        Value::Sensitive(inner) => mask(inner, is_marked),
        Value::List(items) | Value::Set(items) => {
            let parts: Vec<_> = items.iter().map(|i| mask(i, is_marked)).collect();
            if parts.iter().all(|p| p == &serde_json::Value::Bool(false)) {
                serde_json::Value::Bool(false)
            } else {
                serde_json::Value::Array(parts)
            }
        }
        Value::Map(m) => {
            let parts: serde_json::Map<_, _> = m
                .iter()
                .map(|(k, v)| (k.clone(), mask(v, is_marked)))
                .filter(|(_, p)| p != &serde_json::Value::Bool(false))
                .collect();
            if parts.is_empty() {
                serde_json::Value::Bool(false)
            } else {
                serde_json::Value::Object(parts)
            }
        }
        _ => serde_json::Value::Bool(false),
    }
}

/// A number as JSON: integers exactly (up to 64 bits), the rest as the nearest 64-bit float
/// (JSON documents such as state and Kubernetes objects hold no more; `null` beyond its
/// range).
pub fn number_to_json(n: &Number) -> serde_json::Value {
    if let Some(i) = n.to_i64() {
        return serde_json::Value::Number(i.into());
    }
    if n.is_integer()
        && let Ok(u) = n.to_string().parse::<u64>()
    {
        return serde_json::Value::Number(u.into());
    }
    serde_json::Number::from_f64(n.to_f64())
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// A JSON number as a number: its shortest decimal, read as a literal would be, so `0.3`
/// read back from state equals `0.3` in configuration.
pub fn number_from_json(n: &serde_json::Number) -> Number {
    if let Some(i) = n.as_i64() {
        return Number::from(i);
    }
    if let Some(u) = n.as_u64() {
        return Number::from(u);
    }
    Number::parse(&n.to_string()).unwrap_or_else(|| Number::from_f64(n.as_f64().unwrap_or(0.0)))
}

/// A total order over values, used to sort sets and `sort()` results deterministically.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::List(_) => 4,
            Value::Set(_) => 5,
            Value::Map(_) => 6,
            Value::Unknown => 7,
            Value::Sensitive(_) => 8,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::List(x), Value::List(y)) | (Value::Set(x), Value::Set(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Map(x), Value::Map(y)) => {
            for ((k1, v1), (k2, v2)) in x.iter().zip(y) {
                let c = k1.cmp(k2).then_with(|| compare(v1, v2));
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Sensitive(x), Value::Sensitive(y)) => compare(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Renders a value in HCL syntax, the way `flotilla console` and `output` show it.
///
/// Sensitive values render as `(sensitive value)` and unknowns as `(known after apply)`.
pub fn render_value(v: &Value) -> String {
    let mut out = String::new();
    render_into(v, 0, &mut out);
    out
}

fn render_into(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => write!(out, "{b}").unwrap(),
        Value::Number(n) => write!(out, "{n}").unwrap(),
        Value::String(s) if s.contains('\n') && !s.trim_end_matches('\n').is_empty() => {
            let lead = "  ".repeat(indent);
            out.push_str(if indent == 0 { "<<EOT\n" } else { "<<-EOT\n" });
            for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
                out.push_str(&lead);
                out.push_str(line);
                out.push('\n');
            }
            out.push_str(&lead);
            out.push_str("EOT");
        }
        Value::String(s) => out.push_str(&flotilla_config::addr::quote(s)),
        Value::Unknown => out.push_str("(known after apply)"),
        Value::Sensitive(_) => out.push_str("(sensitive value)"),
        Value::List(items) | Value::Set(items) => {
            let (open, close) = if matches!(v, Value::Set(_)) {
                ("toset([", "])")
            } else {
                ("[", "]")
            };
            if items.is_empty() {
                write!(out, "{open}{close}").unwrap();
                return;
            }
            out.push_str(open);
            out.push('\n');
            for item in items {
                out.push_str(&pad);
                render_into(item, indent + 1, out);
                out.push_str(",\n");
            }
            out.push_str(&"  ".repeat(indent));
            out.push_str(close);
        }
        Value::Map(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{\n");
            let width = m.keys().map(|k| render_key(k).len()).max().unwrap_or(0);
            for (k, item) in m {
                let key = render_key(k);
                write!(out, "{pad}{key:width$} = ").unwrap();
                render_into(item, indent + 1, out);
                out.push('\n');
            }
            out.push_str(&"  ".repeat(indent));
            out.push('}');
        }
    }
}

fn render_key(k: &str) -> String {
    if flotilla_config::addr::quote(k) == format!("\"{k}\"")
        && k.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        flotilla_config::addr::quote(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parts_round_trip_marks() {
        let v = Value::object([
            ("a", Value::Unknown),
            ("b", Value::string("x").sensitive()),
            ("c", Value::List(vec![Value::int(1), Value::Unknown])),
        ]);
        let (j, u, s) = v.to_json_parts();
        assert_eq!(u, serde_json::json!({"a": true, "c": [false, true]}));
        assert_eq!(s, serde_json::json!({"b": true}));
        assert_eq!(Value::from_json_parts(&j, &u, &s), v);
    }

    #[test]
    fn renders_like_console() {
        let v = Value::object([
            ("name", Value::string("a")),
            ("ports", Value::List(vec![Value::int(80)])),
            ("secret", Value::string("x").sensitive()),
        ]);
        assert_eq!(
            render_value(&v),
            "{\n  name   = \"a\"\n  ports  = [\n    80,\n  ]\n  secret = (sensitive value)\n}"
        );
    }

    #[test]
    fn sets_sort_and_dedup() {
        let s = Value::set(vec![
            Value::string("b"),
            Value::string("a"),
            Value::string("b"),
        ]);
        assert_eq!(s, Value::Set(vec![Value::string("a"), Value::string("b")]));
    }
}
