//! Versions and Terraform's version constraints (`= != > >= < <= ~>`, comma-separated).
//!
//! A version is `MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`, optionally with a leading `v`
//! (git tags). Missing parts are zero. A pre-release version matches only a constraint that
//! names it exactly (`= 1.2.0-rc.1`), as in Terraform; the newest matching version wins.

use std::cmp::Ordering;
use std::fmt;

/// A semantic version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Major, minor, patch.
    pub parts: [u64; 3],
    /// The pre-release label (`rc.1`), empty for a release.
    pub pre: String,
}

impl Version {
    /// Parses `1.2.3`, `v1.2`, `1.2.3-rc.1+build`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split('+').next()?;
        let (nums, pre) = match s.split_once('-') {
            Some((n, p)) if !p.is_empty() => (n, p.to_string()),
            Some(_) => return None,
            None => (s, String::new()),
        };
        let mut parts = [0u64; 3];
        let mut count = 0;
        for (i, p) in nums.split('.').enumerate() {
            if i >= 3 || p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[i] = p.parse().ok()?;
            count += 1;
        }
        (count > 0).then_some(Version { parts, pre })
    }

    /// Whether this is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.parts.cmp(&other.parts).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_pre(&self.pre, &other.pre),
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semver's pre-release precedence: numeric identifiers numerically, others lexically.
fn compare_pre(a: &str, b: &str) -> Ordering {
    let mut ia = a.split('.');
    let mut ib = b.split('.');
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => x.cmp(y),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.parts;
        write!(f, "{a}.{b}.{c}")?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Pessimistic,
}

/// One `OP VERSION` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    op: Op,
    version: Version,
    /// How many parts were written (`~> 1.2` has 2).
    written: usize,
}

/// A comma-separated list of terms, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    terms: Vec<Term>,
    text: String,
}

/// The operators, longest first, for parsing and for help texts.
const OPS: [(&str, Op); 7] = [
    ("~>", Op::Pessimistic),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("!=", Op::Ne),
    ("=", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
];

impl Constraint {
    /// Parses `">= 1.0, < 2"`, `"~> 1.2"`, `"1.4.0"`; the error says which term is wrong.
    pub fn parse(s: &str) -> Result<Constraint, String> {
        let mut terms = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (op, rest) = OPS
                .iter()
                .find_map(|(text, op)| part.strip_prefix(text).map(|r| (*op, r.trim())))
                .unwrap_or((Op::Eq, part));
            let version = Version::parse(rest).ok_or_else(|| {
                format!("`{part}` is not `OPERATOR VERSION` (operators: = != > >= < <= ~>)")
            })?;
            let written = rest
                .trim_start_matches('v')
                .split(['-', '+'])
                .next()
                .unwrap_or("")
                .split('.')
                .count();
            terms.push(Term {
                op,
                version,
                written,
            });
        }
        Ok(Constraint {
            terms,
            text: s.trim().to_string(),
        })
    }

    /// Whether `v` satisfies every term. Pre-releases only match a term naming them exactly.
    pub fn matches(&self, v: &Version) -> bool {
        if v.is_prerelease() && !self.terms.iter().any(|t| t.op == Op::Eq && t.version == *v) {
            return false;
        }
        self.terms.iter().all(|t| t.holds(v))
    }

    /// The newest of `versions` that matches.
    pub fn newest<'a>(
        &self,
        versions: impl IntoIterator<Item = &'a Version>,
    ) -> Option<&'a Version> {
        versions.into_iter().filter(|v| self.matches(v)).max()
    }
}

impl Term {
    fn holds(&self, v: &Version) -> bool {
        let c = &self.version;
        match self.op {
            Op::Eq => v == c,
            Op::Ne => v != c,
            Op::Gt => v > c,
            Op::Ge => v >= c,
            Op::Lt => v < c,
            Op::Le => v <= c,
            Op::Pessimistic => {
                // `~> 1.2` allows >= 1.2, < 2.0; `~> 1.2.3` allows >= 1.2.3, < 1.3.0.
                let fixed = self.written.saturating_sub(1).max(1);
                v >= c && v.parts[..fixed] == c.parts[..fixed]
            }
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether `version` satisfies `constraint` (`None` when either does not parse).
pub fn version_matches(constraint: &str, version: &str) -> Option<bool> {
    Some(
        Constraint::parse(constraint)
            .ok()?
            .matches(&Version::parse(version)?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn terraform_operators() {
        assert_eq!(version_matches(">= 0.1, < 1.0", "0.1.0"), Some(true));
        assert_eq!(version_matches("~> 0.1", "0.9.3"), Some(true));
        assert_eq!(version_matches("~> 0.1.2", "0.2.0"), Some(false));
        assert_eq!(version_matches("~> 1.1", "1.9.0"), Some(true));
        assert_eq!(version_matches("~> 1.1", "2.0.0"), Some(false));
        assert_eq!(version_matches("~> 1", "1.9.0"), Some(true));
        assert_eq!(version_matches(">= 2", "0.1.0"), Some(false));
        assert_eq!(version_matches("!= 1.1.0", "1.1.0"), Some(false));
        assert_eq!(version_matches("> 1.0, <= 1.1", "1.1.0"), Some(true));
        assert_eq!(version_matches("1.1.0", "v1.1.0"), Some(true));
        assert_eq!(version_matches("banana", "0.1.0"), None);
    }

    #[test]
    fn newest_match_wins_and_prereleases_need_naming() {
        let all: Vec<Version> = ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0"]
            .iter()
            .map(|s| v(s))
            .collect();
        let c = Constraint::parse("~> 1.0").unwrap();
        assert_eq!(c.newest(&all), Some(&v("1.1.0")));
        let exact = Constraint::parse("= 1.2.0-rc.1").unwrap();
        assert_eq!(exact.newest(&all), Some(&v("1.2.0-rc.1")));
        assert_eq!(Constraint::parse("> 3").unwrap().newest(&all), None);
    }

    #[test]
    fn prerelease_ordering() {
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.2") < v("1.0.0-alpha.10"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("v1.2").to_string(), "1.2.0");
        assert!(Version::parse("1.x").is_none());
    }
}
