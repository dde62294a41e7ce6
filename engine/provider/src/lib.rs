//! The provider interface: how the engine asks a provider to plan, apply, read and import.
//!
//! One trait, [`Provider`], with one request/response pair per call, as in Terraform's
//! provider protocol. Providers are linked into the binary and listed in a [`ProviderRegistry`];
//! the planner creates one provider instance per provider configuration block and calls
//! [`Provider::configure`] on it before use.
//!
//! Values cross this boundary as [`Value`]s: planned values may contain
//! [`Value::Unknown`] for attributes only known after apply.
//!
//! **Invariant:** a provider never sees configuration syntax or state files, only values; it
//! never decides actions (create/update/replace), only reports what it needs
//! ([`PlanResponse::requires_replace`]).
//!
//! **API boundary:** this crate is what provider crates depend on; it must stay free of
//! planner and executor types.

mod host;
mod review;
mod schema;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use flotilla_lang::{AttrPath, Type, Value};
pub use flotilla_syntax::did_you_mean;
pub use host::{ProviderHost, SandboxCluster, SandboxResolver, ShutdownHook};
pub use review::{Finding, Review, ReviewedProvider, ReviewedResource};
pub use schema::{
    AttributeSchema, BlockSchema, NestedBlockSchema, Nesting, ProviderSchema, ResourceSchema,
};

/// A failure reported by a provider.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ProviderError {
    /// What went wrong, in one sentence.
    pub message: String,
    /// More context (the server's message, the file, ...).
    pub detail: Option<String>,
    /// The attribute the problem is about, if any.
    pub attribute: Option<AttrPath>,
}

impl ProviderError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> ProviderError {
        ProviderError {
            message: message.into(),
            detail: None,
            attribute: None,
        }
    }

    /// Adds detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> ProviderError {
        self.detail = Some(detail.into());
        self
    }

    /// The message with its detail, for diagnostics.
    pub fn describe(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} ({d})", self.message),
            None => self.message.clone(),
        }
    }

    /// Names the attribute at fault.
    pub fn at(mut self, path: AttrPath) -> ProviderError {
        self.attribute = Some(path);
        self
    }
}

/// Why a change needs a replacement instead of an in-place update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplaceReason {
    /// The attribute whose change forces the replacement.
    pub path: AttrPath,
    /// Why, in the provider's words ("cannot be changed in place", or the server's message).
    pub reason: String,
}

/// Ask the provider what the object will look like after a change.
#[derive(Debug, Clone)]
pub struct PlanRequest<'a> {
    /// Resource type, e.g. `builtin_data`.
    pub type_name: &'a str,
    /// The current state (after refresh), or `None` for a create.
    pub prior: Option<&'a Value>,
    /// The configuration merged with prior computed values (the "proposed new state").
    pub proposed: &'a Value,
    /// Whether a resource this one depends on is created, updated or replaced by the same
    /// plan: a server's refusal that may be about it (a parent object not there yet) is
    /// judged again at apply, when the dependency exists.
    pub dependencies_pending: bool,
    /// Whether this is apply's final plan, made right before [`Provider::apply_change`]
    /// carries it out: a provider may leave to the write the checks the write itself makes
    /// (a server's dry run of a new object).
    pub applying: bool,
}

/// The provider's plan for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanResponse {
    /// The object after the change; computed attributes not yet known are `Unknown`.
    pub planned: Value,
    /// Attributes whose change cannot be applied in place.
    pub requires_replace: Vec<ReplaceReason>,
    /// What the change will do beyond the object itself, for the plan text (where a Karmada
    /// policy places its templates). Never sensitive.
    pub notes: Vec<String>,
}

/// Make the real object match `planned` (or delete it when `planned` is `None`).
#[derive(Debug, Clone)]
pub struct ApplyRequest<'a> {
    /// Resource type.
    pub type_name: &'a str,
    /// The state before the change (`None` for a create).
    pub prior: Option<&'a Value>,
    /// The desired object, fully known (`None` for a delete).
    pub planned: Option<&'a Value>,
}

/// The object after apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyResponse {
    /// The new state, or `None` after a delete.
    pub new_state: Option<Value>,
    /// Set when the object was written (so `new_state` is real and must be recorded) but the
    /// operation still failed, e.g. it never became ready: the engine records it tainted,
    /// reports this error, and the next plan replaces it.
    pub failed: Option<ProviderError>,
}

impl ApplyResponse {
    /// A successful apply that left this state.
    pub fn done(new_state: Option<Value>) -> ApplyResponse {
        ApplyResponse {
            new_state,
            failed: None,
        }
    }
}

/// Read the real object behind a state entry (refresh and drift detection).
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    /// Resource type.
    pub type_name: &'a str,
    /// The state as recorded.
    pub current: &'a Value,
}

/// What the real object looks like now.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResponse {
    /// The object, or `None` when it no longer exists.
    pub state: Option<Value>,
}

/// Read a data source.
#[derive(Debug, Clone)]
pub struct ReadDataRequest<'a> {
    /// Data source type.
    pub type_name: &'a str,
    /// The data source's configuration, fully known.
    pub config: &'a Value,
}

/// Adopt an existing object into state.
#[derive(Debug, Clone)]
pub struct ImportRequest<'a> {
    /// Resource type.
    pub type_name: &'a str,
    /// The provider-specific id (`namespace/name` for Kubernetes objects).
    pub id: &'a str,
}

/// Observe an object's health for a rollout's gate.
#[derive(Debug, Clone)]
pub struct ObserveRequest<'a> {
    /// Resource type.
    pub type_name: &'a str,
    /// The state as recorded (after the change, when observing a gate).
    pub current: &'a Value,
    /// [`Observation::baseline`] as observed before the change: the provider reports the
    /// object healthy only once its controller has picked up a revision newer than that
    /// (so a status left from the previous revision never passes a gate).
    pub baseline: Option<&'a serde_json::Value>,
}

/// Whether an object is healthy, as its kind's controller reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not yet: being rolled out, analysed, or not yet picked up.
    Progressing,
    /// Healthy at the revision applied.
    Healthy,
    /// Failed for good (a failed canary analysis, a failed condition).
    Failed,
}

/// An object's health, with what a progress line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Healthy, progressing or failed.
    pub health: Health,
    /// The controller's own words (phase, condition message).
    pub message: String,
    /// Traffic weight on the new revision, for canaries.
    pub weight: Option<i64>,
    /// Failed checks of an analysis, for canaries.
    pub failed_checks: Option<i64>,
    /// What identifies the revision the controller has seen, opaque to the engine: given
    /// back as [`ObserveRequest::baseline`] after the change.
    pub baseline: serde_json::Value,
}

/// A boxed future, so the trait stays object-safe.
pub type ProviderResult<T> = Result<T, ProviderError>;

/// A provider: one implementation per ecosystem, one instance per configuration block.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// What the provider offers: its configuration, resource types and data sources.
    fn schema(&self) -> &ProviderSchema;

    /// Checks a resource's configuration offline, beyond what the schema expresses.
    fn validate(&self, _type_name: &str, _config: &Value) -> Vec<ProviderError> {
        Vec::new()
    }

    /// Whether [`Provider::review`] checks anything (so the engine builds a review only
    /// for providers that read it).
    fn reviews(&self) -> bool {
        false
    }

    /// Checks across resources (see [`Review`]); called once per provider, not per block.
    fn review(&self, _review: &Review<'_>) -> Vec<Finding> {
        Vec::new()
    }

    /// Dependencies the configuration implies without expressions saying so, as
    /// (dependent, dependency) indexes into `review.resources`: names the platform resolves
    /// itself (an Istio route naming a gateway). Called, like [`Provider::review`], on the
    /// configuration's literal values when the graph is built, for providers that review.
    fn references(&self, _review: &Review<'_>) -> Vec<(usize, usize)> {
        Vec::new()
    }

    /// Accepts the provider block's configuration (connection settings).
    async fn configure(&self, config: &Value) -> ProviderResult<()>;

    /// Plans a create or update.
    async fn plan_change(&self, req: PlanRequest<'_>) -> ProviderResult<PlanResponse>;

    /// Applies a create, update or delete.
    async fn apply_change(&self, req: ApplyRequest<'_>) -> ProviderResult<ApplyResponse>;

    /// Reads the current real object.
    async fn read(&self, req: ReadRequest<'_>) -> ProviderResult<ReadResponse>;

    /// Reads a data source.
    async fn read_data(&self, req: ReadDataRequest<'_>) -> ProviderResult<Value>;

    /// Observes an object's health for a rollout gate; `None` when the type has no notion
    /// of health (the gate is then its apply's own readiness).
    async fn observe(&self, _req: ObserveRequest<'_>) -> ProviderResult<Option<Observation>> {
        Ok(None)
    }

    /// Imports an existing object.
    async fn import(&self, req: ImportRequest<'_>) -> ProviderResult<Value> {
        Err(ProviderError::new(format!(
            "{} does not support import",
            req.type_name
        )))
    }
}

/// Parses durations like `500ms`, `30s`, `2m`, `1h` and `1h30m` (a bare number is seconds),
/// as providers' `timeouts` and CLI flags take them.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut secs = 0.0;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..split].parse().ok()?;
        rest = &rest[split..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        secs += n * match &rest[..unit_end] {
            "ms" => 0.001,
            "" | "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
    }
    Some(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("1d"), None);
    }
}

/// Creates a fresh, unconfigured provider instance served by the run's host.
pub type ProviderFactory = fn(&Arc<ProviderHost>) -> Arc<dyn Provider>;

/// The providers linked into this binary, by name, and the host of the run they serve.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    factories: BTreeMap<String, ProviderFactory>,
    host: Arc<ProviderHost>,
}

impl ProviderRegistry {
    /// An empty registry with a host that drops notices and has no sandbox.
    pub fn new() -> ProviderRegistry {
        ProviderRegistry::default()
    }

    /// An empty registry whose providers are served by `host`.
    pub fn with_host(host: Arc<ProviderHost>) -> ProviderRegistry {
        ProviderRegistry {
            factories: BTreeMap::new(),
            host,
        }
    }

    /// The run's host.
    pub fn host(&self) -> &Arc<ProviderHost> {
        &self.host
    }

    /// Adds a provider under its name (the prefix of its resource types).
    pub fn register(&mut self, name: &str, factory: ProviderFactory) {
        self.factories.insert(name.to_string(), factory);
    }

    /// A new instance of the named provider.
    pub fn instantiate(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.factories.get(name).map(|f| f(&self.host))
    }

    /// The registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}
