//! Attribute paths inside values (`spec.ports[0]`, `tags["env"]`).

use std::fmt;

use crate::Value;

/// One step of an [`AttrPath`].
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(untagged)]
pub enum PathStep {
    /// An object attribute or map key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path from the root of a value to one part of it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// A path of one attribute.
    pub fn attr(name: impl Into<String>) -> AttrPath {
        AttrPath(vec![PathStep::Key(name.into())])
    }

    /// This path extended by one key.
    pub fn key(&self, k: impl Into<String>) -> AttrPath {
        let mut p = self.0.clone();
        p.push(PathStep::Key(k.into()));
        AttrPath(p)
    }

    /// This path extended by one index.
    pub fn index(&self, i: usize) -> AttrPath {
        let mut p = self.0.clone();
        p.push(PathStep::Index(i));
        AttrPath(p)
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn starts_with(&self, other: &AttrPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The part of `v` at this path, if present.
    pub fn get<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        let mut cur = v;
        for step in &self.0 {
            cur = match (cur.shallow_unmark(), step) {
                (Value::Map(m), PathStep::Key(k)) => m.get(k)?,
                (Value::List(items) | Value::Set(items), PathStep::Index(i)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Key(k) if flotilla_config::is_identifier(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                PathStep::Key(k) => write!(f, "[{}]", flotilla_config::addr::quote(k))?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Every path at which `a` and `b` differ, at the deepest level where both are containers.
pub fn diff_paths(a: &Value, b: &Value) -> Vec<AttrPath> {
    let mut out = Vec::new();
    diff_into(a, b, &mut AttrPath::default(), &mut out);
    out
}

fn diff_into(a: &Value, b: &Value, path: &mut AttrPath, out: &mut Vec<AttrPath>) {
    match (a.shallow_unmark(), b.shallow_unmark()) {
        (Value::Map(x), Value::Map(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                path.0.push(PathStep::Key(k.clone()));
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_into(p, q, path, out),
                    _ => out.push(path.clone()),
                }
                path.0.pop();
            }
        }
        (Value::List(x), Value::List(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                path.0.push(PathStep::Index(i));
                diff_into(p, q, path, out);
                path.0.pop();
            }
        }
        (p, q) => {
            if !crate::eval::values_equal(p, q) || p.is_unknown() != q.is_unknown() {
                out.push(path.clone());
            }
        }
    }
}
