//! Typed addresses: resources, instances, module instances and provider configurations.
//!
//! Every address has a `Display` form identical to what users type, and a `FromStr` that
//! parses it back; tests check the round trip.

use std::fmt;
use std::str::FromStr;

/// Managed resource or data source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ResourceMode {
    /// `resource "TYPE" "NAME"`
    Managed,
    /// `data "TYPE" "NAME"`
    Data,
}

/// A resource within one module: `TYPE.NAME` or `data.TYPE.NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddr {
    /// Managed or data.
    pub mode: ResourceMode,
    /// Resource type, e.g. `builtin_data`; its prefix names the provider.
    pub type_: String,
    /// The block's name label.
    pub name: String,
}

impl ResourceAddr {
    /// A managed resource address.
    pub fn managed(type_: impl Into<String>, name: impl Into<String>) -> ResourceAddr {
        ResourceAddr {
            mode: ResourceMode::Managed,
            type_: type_.into(),
            name: name.into(),
        }
    }

    /// The default provider name for this resource type: the part before the first `_`.
    pub fn implied_provider(&self) -> &str {
        self.type_.split('_').next().unwrap_or(&self.type_)
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mode == ResourceMode::Data {
            f.write_str("data.")?;
        }
        write!(f, "{}.{}", self.type_, self.name)
    }
}

/// The key of one instance of a resource or module with `count` or `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum InstanceKey {
    /// No `count` or `for_each`: the single instance.
    #[default]
    None,
    /// A `count` index.
    Int(i64),
    /// A `for_each` key.
    Str(String),
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::None => Ok(()),
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{}]", quote(s)),
        }
    }
}

/// Quotes a string the way HCL and JSON do.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One step of a module instance path: `module.NAME[KEY]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleStep {
    /// The module call's name.
    pub name: String,
    /// Which instance of the call.
    pub key: InstanceKey,
}

/// A module instance: the root module, or a chain of module call instances.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ModuleInstance(pub Vec<ModuleStep>);

impl ModuleInstance {
    /// The root module.
    pub fn root() -> ModuleInstance {
        ModuleInstance(Vec::new())
    }

    /// Whether this is the root module.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This instance's static module path (keys dropped).
    pub fn path(&self) -> ModulePath {
        ModulePath(self.0.iter().map(|s| s.name.clone()).collect())
    }

    /// The instance of child call `name` with `key` inside this one.
    pub fn child(&self, name: &str, key: InstanceKey) -> ModuleInstance {
        let mut steps = self.0.clone();
        steps.push(ModuleStep {
            name: name.to_string(),
            key,
        });
        ModuleInstance(steps)
    }

    /// The enclosing module instance, if this is not the root.
    pub fn parent(&self) -> Option<ModuleInstance> {
        if self.0.is_empty() {
            None
        } else {
            Some(ModuleInstance(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

impl fmt::Display for ModuleInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{}{}", crate::call_address(&step.name), step.key)?;
        }
        Ok(())
    }
}

/// A static module path: module call names from the root, without instance keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ModulePath(pub Vec<String>);

impl ModulePath {
    /// The root module's path.
    pub fn root() -> ModulePath {
        ModulePath(Vec::new())
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path of child call `name`.
    pub fn child(&self, name: &str) -> ModulePath {
        let mut p = self.0.clone();
        p.push(name.to_string());
        ModulePath(p)
    }

    /// The enclosing path, if any.
    pub fn parent(&self) -> Option<ModulePath> {
        if self.0.is_empty() {
            None
        } else {
            Some(ModulePath(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{}", crate::call_address(name))?;
        }
        Ok(())
    }
}

/// One instance of a resource anywhere in the module tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceInstanceAddr {
    /// The module instance holding the resource.
    pub module: ModuleInstance,
    /// The resource within the module.
    pub resource: ResourceAddr,
    /// Which instance.
    pub key: InstanceKey,
}

impl ResourceInstanceAddr {
    /// The address without its instance key.
    pub fn without_key(&self) -> AbsResourceAddr {
        AbsResourceAddr {
            module: self.module.clone(),
            resource: self.resource.clone(),
        }
    }

    /// The configuration object it is an instance of, named as the graph and recorded
    /// dependencies name it: `module.net.builtin_data.a` (no instance keys anywhere).
    pub fn config_addr(&self) -> String {
        let p = self.module.path();
        if p.is_root() {
            self.resource.to_string()
        } else {
            format!("{p}.{}", self.resource)
        }
    }
}

impl fmt::Display for ResourceInstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.module.is_root() {
            write!(f, "{}.", self.module)?;
        }
        write!(f, "{}{}", self.resource, self.key)
    }
}

/// A resource (all of its instances) in one module instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AbsResourceAddr {
    /// The module instance holding the resource.
    pub module: ModuleInstance,
    /// The resource within the module.
    pub resource: ResourceAddr,
}

impl AbsResourceAddr {
    /// The address of one instance.
    pub fn instance(&self, key: InstanceKey) -> ResourceInstanceAddr {
        ResourceInstanceAddr {
            module: self.module.clone(),
            resource: self.resource.clone(),
            key,
        }
    }
}

impl fmt::Display for AbsResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.module.is_root() {
            write!(f, "{}.", self.module)?;
        }
        write!(f, "{}", self.resource)
    }
}

/// A provider configuration: `provider.NAME` or `provider.NAME.ALIAS`, possibly in a module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderConfigAddr {
    /// The module that declares the provider block.
    pub module: ModulePath,
    /// The provider's name (the resource type prefix).
    pub name: String,
    /// The alias, for a non-default configuration.
    pub alias: Option<String>,
    /// The instance of a provider block with `for_each` (`provider.kube.member["beijing"]`).
    pub key: InstanceKey,
}

impl ProviderConfigAddr {
    /// The default (unaliased) configuration of a provider in the root module.
    pub fn root(name: impl Into<String>) -> ProviderConfigAddr {
        ProviderConfigAddr {
            module: ModulePath::root(),
            name: name.into(),
            alias: None,
            key: InstanceKey::None,
        }
    }

    /// The instance `key` of this provider block.
    pub fn instance(&self, key: InstanceKey) -> ProviderConfigAddr {
        ProviderConfigAddr {
            key,
            ..self.clone()
        }
    }

    /// The provider block this instance belongs to (without the key).
    pub fn block(&self) -> ProviderConfigAddr {
        self.instance(InstanceKey::None)
    }
}

impl fmt::Display for ProviderConfigAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.module.is_root() {
            write!(f, "{}.", self.module)?;
        }
        write!(f, "provider.{}", self.name)?;
        if let Some(alias) = &self.alias {
            write!(f, ".{alias}")?;
        }
        write!(f, "{}", self.key)
    }
}

/// A parse failure for an address typed by a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError {
    /// The text that did not parse.
    pub input: String,
    /// What was expected.
    pub reason: String,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid address `{}`: {}", self.input, self.reason)
    }
}

impl std::error::Error for AddrError {}

/// Tokens of an address: names separated by dots, and bracketed keys.
#[derive(Debug, PartialEq)]
enum Tok {
    Name(String),
    Key(InstanceKey),
}

fn tokenize(input: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = input.char_indices().peekable();
    let mut expect_name = true;
    while let Some(&(i, c)) = chars.peek() {
        match c {
            '.' if !expect_name => {
                chars.next();
                expect_name = true;
            }
            '[' => {
                chars.next();
                let rest = &input[i + 1..];
                let end = find_close(rest).ok_or("unterminated `[`")?;
                let inner = rest[..end].trim();
                let key = if let Some(s) = inner.strip_prefix('"') {
                    let s = s.strip_suffix('"').ok_or("unterminated string key")?;
                    InstanceKey::Str(unescape(s))
                } else {
                    InstanceKey::Int(
                        inner
                            .parse()
                            .map_err(|_| format!("`{inner}` is not an instance key"))?,
                    )
                };
                toks.push(Tok::Key(key));
                for _ in 0..=rest[..end].chars().count() {
                    chars.next();
                }
                expect_name = false;
            }
            c if expect_name && (c.is_alphanumeric() || c == '_' || c == '-') => {
                let mut name = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                toks.push(Tok::Name(name));
                expect_name = false;
            }
            _ => return Err(format!("unexpected `{c}`")),
        }
    }
    if expect_name && !toks.is_empty() {
        return Err("ends with `.`".into());
    }
    Ok(toks)
}

fn find_close(s: &str) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            ']' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a module-instance prefix off the front of `toks`.
fn take_module(toks: &[Tok]) -> (ModuleInstance, &[Tok]) {
    let mut module = ModuleInstance::root();
    let mut rest = toks;
    while let [Tok::Name(m), Tok::Name(name), tail @ ..] = rest {
        let name = if m == "module" {
            name.clone()
        } else if crate::DOMAIN_KINDS.contains(&m.as_str()) {
            format!("{m}.{name}")
        } else {
            break;
        };
        let (key, tail) = match tail {
            [Tok::Key(k), t @ ..] => (k.clone(), t),
            t => (InstanceKey::None, t),
        };
        module.0.push(ModuleStep { name, key });
        rest = tail;
    }
    (module, rest)
}

fn take_resource(toks: &[Tok]) -> Result<(ResourceAddr, &[Tok]), String> {
    match toks {
        [Tok::Name(d), Tok::Name(t), Tok::Name(n), rest @ ..] if d == "data" => Ok((
            ResourceAddr {
                mode: ResourceMode::Data,
                type_: t.clone(),
                name: n.clone(),
            },
            rest,
        )),
        [Tok::Name(t), Tok::Name(n), rest @ ..] => Ok((ResourceAddr::managed(t, n), rest)),
        _ => Err("expected `TYPE.NAME` or `data.TYPE.NAME`".into()),
    }
}

impl FromStr for ResourceInstanceAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let err = |reason: String| AddrError {
            input: s.to_string(),
            reason,
        };
        let toks = tokenize(s).map_err(err)?;
        let (module, rest) = take_module(&toks);
        let (resource, rest) = take_resource(rest).map_err(err)?;
        let key = match rest {
            [] => InstanceKey::None,
            [Tok::Key(k)] => k.clone(),
            _ => return Err(err("unexpected text after the resource address".into())),
        };
        Ok(ResourceInstanceAddr {
            module,
            resource,
            key,
        })
    }
}

impl FromStr for ModuleInstance {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let toks = tokenize(s).map_err(|reason| AddrError {
            input: s.to_string(),
            reason,
        })?;
        match take_module(&toks) {
            (m, []) => Ok(m),
            _ => Err(AddrError {
                input: s.to_string(),
                reason: "expected `module.NAME` steps".into(),
            }),
        }
    }
}

/// An address a user can name in `-target`, `moved`, or `state` commands: a module instance,
/// a whole resource, or one resource instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetAddr {
    /// `module.a` or `module.a["k"]`: everything inside.
    Module(ModuleInstance),
    /// `TYPE.NAME` in a module instance: all instances.
    Resource(AbsResourceAddr),
    /// `TYPE.NAME[KEY]`: one instance.
    Instance(ResourceInstanceAddr),
}

impl TargetAddr {
    /// Whether this target selects the given resource instance.
    pub fn contains(&self, addr: &ResourceInstanceAddr) -> bool {
        match self {
            TargetAddr::Module(m) => module_matches(m, &addr.module, true),
            TargetAddr::Resource(r) => {
                module_matches(&r.module, &addr.module, false) && addr.resource == r.resource
            }
            TargetAddr::Instance(i) => i == addr,
        }
    }
}

/// Whether `pattern` selects `inst`; a step without a key selects every instance of the call.
fn module_matches(pattern: &ModuleInstance, inst: &ModuleInstance, prefix: bool) -> bool {
    let len_ok = if prefix {
        inst.0.len() >= pattern.0.len()
    } else {
        inst.0.len() == pattern.0.len()
    };
    len_ok
        && pattern
            .0
            .iter()
            .zip(&inst.0)
            .all(|(p, i)| p.name == i.name && (p.key == InstanceKey::None || p.key == i.key))
}

impl FromStr for TargetAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let err = |reason: String| AddrError {
            input: s.to_string(),
            reason,
        };
        let toks = tokenize(s).map_err(err)?;
        let (module, rest) = take_module(&toks);
        if rest.is_empty() {
            if module.is_root() {
                return Err(err("empty address".into()));
            }
            return Ok(TargetAddr::Module(module));
        }
        let (resource, rest) = take_resource(rest).map_err(err)?;
        match rest {
            [] => Ok(TargetAddr::Resource(AbsResourceAddr { module, resource })),
            [Tok::Key(k)] => Ok(TargetAddr::Instance(ResourceInstanceAddr {
                module,
                resource,
                key: k.clone(),
            })),
            _ => Err(err("unexpected text after the resource address".into())),
        }
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Module(m) => write!(f, "{m}"),
            TargetAddr::Resource(r) => write!(f, "{r}"),
            TargetAddr::Instance(i) => write!(f, "{i}"),
        }
    }
}

impl FromStr for ProviderConfigAddr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let toks = tokenize(s).map_err(|reason| AddrError {
            input: s.to_string(),
            reason,
        })?;
        let (module, rest) = take_module(&toks);
        match rest {
            [Tok::Name(p), Tok::Name(name), alias @ ..] if p == "provider" => {
                let (alias, key) = match alias {
                    [] => (None, InstanceKey::None),
                    [Tok::Name(a)] => (Some(a.clone()), InstanceKey::None),
                    [Tok::Name(a), Tok::Key(k)] => (Some(a.clone()), k.clone()),
                    _ => {
                        return Err(AddrError {
                            input: s.to_string(),
                            reason: "expected `provider.NAME[.ALIAS[KEY]]`".into(),
                        });
                    }
                };
                Ok(ProviderConfigAddr {
                    module: module.path(),
                    name: name.clone(),
                    alias,
                    key,
                })
            }
            _ => Err(AddrError {
                input: s.to_string(),
                reason: "expected `provider.NAME[.ALIAS]`".into(),
            }),
        }
    }
}

macro_rules! serde_via_string {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_via_string!(
    ResourceInstanceAddr,
    ModuleInstance,
    ProviderConfigAddr,
    TargetAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: FromStr + fmt::Display>(s: &str)
    where
        T::Err: fmt::Debug,
    {
        let parsed: T = s.parse().unwrap();
        assert_eq!(parsed.to_string(), s);
    }

    #[test]
    fn addresses_round_trip() {
        round_trip::<ResourceInstanceAddr>("builtin_data.a");
        round_trip::<ResourceInstanceAddr>("builtin_data.a[0]");
        round_trip::<ResourceInstanceAddr>("data.builtin_file.x[\"k.1\"]");
        round_trip::<ResourceInstanceAddr>(
            "module.net[\"eu\"].module.b[2].kube_namespace.ns[\"a\\\"b\"]",
        );
        round_trip::<ModuleInstance>("module.a.module.b[\"x\"]");
        round_trip::<ProviderConfigAddr>("provider.kube");
        round_trip::<ProviderConfigAddr>("provider.kube.beijing");
        round_trip::<ProviderConfigAddr>("module.x.provider.kube");
        round_trip::<ProviderConfigAddr>("provider.kube.member[\"beijing\"]");
        round_trip::<ProviderConfigAddr>("cluster.a.provider.kube.member[\"x\"]");
        round_trip::<ResourceInstanceAddr>("fleet.prod.module.join[\"a\"].karmada_cluster.this");
        round_trip::<ModuleInstance>("cluster.beijing");
        round_trip::<TargetAddr>("module.x");
        round_trip::<TargetAddr>("module.x.builtin_data.y");
        round_trip::<TargetAddr>("builtin_data.y[3]");
    }

    #[test]
    fn rejects_garbage() {
        assert!("builtin_data".parse::<ResourceInstanceAddr>().is_err());
        assert!("a.b.".parse::<ResourceInstanceAddr>().is_err());
        assert!("a.b[x]".parse::<ResourceInstanceAddr>().is_err());
        assert!("a.b[0].c".parse::<ResourceInstanceAddr>().is_err());
    }

    #[test]
    fn target_contains() {
        let t: TargetAddr = "module.x".parse().unwrap();
        let a: ResourceInstanceAddr = "module.x[1].builtin_data.y".parse().unwrap();
        assert!(
            t.contains(&a),
            "module.x without a key selects every instance"
        );
        let t: TargetAddr = "module.x[2]".parse().unwrap();
        assert!(!t.contains(&a));
        let t: TargetAddr = "builtin_data.y".parse().unwrap();
        assert!(t.contains(&"builtin_data.y[3]".parse().unwrap()));
    }
}
