//! The built-in provider: resources that need no cluster.
//!
//! - `builtin_data`: stores a value in state, like Terraform's `terraform_data`. `input` is
//!   copied to `output`; a change of `triggers_replace` forces replacement.
//! - `builtin_file`: a file on local disk with `content`; editing or deleting the file outside
//!   flotilla shows up as drift on the next plan.
//! - `builtin_random`: a random string, stable until `length`, `special` or `keepers` change.
//! - `builtin_sleep`: waits `create_duration` when created (and `destroy_duration` when
//!   destroyed), for ordering against systems that need time to settle.
//! - `builtin_rollout`: a fleet rollout's description (its waves, gates and budgets), which
//!   the standard `rollout` module declares; the planner turns it into the plan's waves and
//!   the execution graph's gates ([flotilla-plan `rollout`]). Applying it records it.
//! - data `builtin_file`: reads a file.
//! - data `builtin_http`: one HTTP request (`url`, `method`, `request_headers`,
//!   `request_body`): `status_code`, `response_headers`, `response_body`, and `json`, the
//!   body parsed when it is JSON (so a rollout check can compare a field of a health
//!   endpoint or a Prometheus query). Like Terraform's `http` data source, a non-2xx status
//!   is a value, not an error; an unreachable host is an error.
//!
//! These are the test bed of the engine and the first thing new users apply.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

mod http;

use flotilla_provider::{
    ApplyRequest, ApplyResponse, AttrPath, AttributeSchema, BlockSchema, PlanRequest, PlanResponse,
    Provider, ProviderError, ProviderResult, ProviderSchema, ReadDataRequest, ReadRequest,
    ReadResponse, ReplaceReason, ResourceSchema, Type, Value,
};

/// The provider's name: the prefix of its resource types.
pub const NAME: &str = "builtin";

/// A new instance, for the provider registry.
pub fn factory(_host: &Arc<flotilla_provider::ProviderHost>) -> Arc<dyn Provider> {
    Arc::new(Builtin)
}

struct Builtin;

fn schema() -> &'static ProviderSchema {
    static SCHEMA: OnceLock<ProviderSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut s = ProviderSchema::default();
        s.resources.insert(
            "builtin_data".into(),
            ResourceSchema {
                description: "Stores a value in state; `output` mirrors `input`. Like Terraform's terraform_data.".into(),
                block: BlockSchema::default()
                    .attr("input", AttributeSchema::optional(Type::Any, "Any value to store."))
                    .attr("triggers_replace", AttributeSchema::optional(Type::Any, "A change of this value replaces the resource.").force_new())
                    .attr("output", AttributeSchema::computed(Type::Any, "The stored `input`."))
                    .attr("id", AttributeSchema::computed(Type::String, "A random id assigned at creation.")),
                ..ResourceSchema::default()
            },
        );
        s.resources.insert(
            "builtin_file".into(),
            ResourceSchema {
                description: "A file on local disk.".into(),
                block: BlockSchema::default()
                    .attr("path", AttributeSchema::required(Type::String, "Where to write the file; relative to the working directory.").force_new())
                    .attr("content", AttributeSchema::optional(Type::String, "The file's content."))
                    .attr("sensitive_content", AttributeSchema::optional(Type::String, "Content that is never shown in plans.").sensitive())
                    .attr("file_permission", AttributeSchema::optional(Type::String, "Octal permission bits, default \"0644\".").with_default())
                    .attr("id", AttributeSchema::computed(Type::String, "blake3 hash of the content.")),
                ..ResourceSchema::default()
            },
        );
        s.resources.insert(
            "builtin_random".into(),
            ResourceSchema {
                description: "A random string, stable until replaced.".into(),
                block: BlockSchema::default()
                    .attr("length", AttributeSchema::optional(Type::Number, "Number of characters, default 16.").with_default().force_new())
                    .attr("special", AttributeSchema::optional(Type::Bool, "Include punctuation, default false.").with_default().force_new())
                    .attr("keepers", AttributeSchema::optional(Type::Map(Box::new(Type::String)), "Arbitrary values; a change makes a new string.").force_new())
                    .attr("result", AttributeSchema::computed(Type::String, "The random string."))
                    .attr("id", AttributeSchema::computed(Type::String, "Same as `result`.")),
                ..ResourceSchema::default()
            },
        );
        s.resources.insert(
            "builtin_sleep".into(),
            ResourceSchema {
                description: "Waits for a while when created or destroyed, like Terraform's time_sleep.".into(),
                block: BlockSchema::default()
                    .attr("create_duration", AttributeSchema::optional(Type::String, "How long to wait on create, e.g. \"30s\" or \"500ms\".").force_new())
                    .attr("destroy_duration", AttributeSchema::optional(Type::String, "How long to wait on destroy."))
                    .attr("triggers", AttributeSchema::optional(Type::Map(Box::new(Type::String)), "Arbitrary values; a change waits again.").force_new())
                    .attr("id", AttributeSchema::computed(Type::String, "When the wait finished (RFC 3339).")),
                ..ResourceSchema::default()
            },
        );
        s.resources.insert(
            "builtin_rollout".into(),
            ResourceSchema {
                description: "A fleet rollout: the members it moves in waves, its health gates and failure budget (declared by the standard `rollout` module).".into(),
                block: BlockSchema::default()
                    .attr("name", AttributeSchema::required(Type::String, "The rollout's name."))
                    .attr("revision", AttributeSchema::required(Type::Any, "What is rolled out; its digest identifies the revision."))
                    .attr("label", AttributeSchema::optional(Type::String, "A readable name of the revision (the image)."))
                    .attr("members", AttributeSchema::required(Type::List(Box::new(Type::String)), "Every member, in order."))
                    .attr("waves", AttributeSchema::required(Type::Any, "The waves: `name`, `selected` (members, or null for the rest), `names`, `max_concurrency`, `soak`, `approval`, `max_failures`."))
                    .attr("max_failures", AttributeSchema::optional(Type::Number, "Failed members the whole rollout tolerates."))
                    .attr("on_failure", AttributeSchema::optional(Type::String, "`rollback`, `pause` or `abort`."))
                    .attr("on_change", AttributeSchema::optional(Type::String, "`supersede` or `fold`: what a new revision does to an unfinished rollout."))
                    .attr("progress_deadline", AttributeSchema::optional(Type::String, "How long one member may take to become healthy."))
                    .attr("manages", AttributeSchema::required(Type::List(Box::new(Type::String)), "The module's resources it moves, each keyed by member."))
                    .attr("gate", AttributeSchema::optional(Type::String, "The resource whose instance per member is the health gate."))
                    .attr("replicas", AttributeSchema::optional(Type::Map(Box::new(Type::Number)), "Replicas per member, for exposure."))
                    .attr("fleet_size", AttributeSchema::optional(Type::Number, "Members of the whole fleet, for exposure."))
                    .attr("checks", AttributeSchema::optional(Type::Any, "Extra checks per member: `name`, a data source (`data`, `config`) read on the member, a `field` path of its value, and `equals`, `one_of`, `min`, `max`, `wait`.")),
                ..ResourceSchema::default()
            },
        );
        s.data_sources.insert(
            "builtin_http".into(),
            ResourceSchema {
                description: "Makes one HTTP request and returns the response (for rollout checks: a health endpoint, a metrics query).".into(),
                block: BlockSchema::default()
                    .attr("url", AttributeSchema::required(Type::String, "The URL (`http://` or `https://`, the system's root certificates)."))
                    .attr("method", AttributeSchema::optional(Type::String, "`GET` (the default), `HEAD` or `POST`."))
                    .attr("request_headers", AttributeSchema::optional(Type::Map(Box::new(Type::String)), "Headers to send."))
                    .attr("request_body", AttributeSchema::optional(Type::String, "The body to send."))
                    .attr("request_timeout", AttributeSchema::optional(Type::String, "How long the request may take (`10s`, the default)."))
                    .attr("status_code", AttributeSchema::computed(Type::Number, "The response's status code."))
                    .attr("response_headers", AttributeSchema::computed(Type::Map(Box::new(Type::String)), "The response's headers (lower-case names; repeated ones joined with `, `)."))
                    .attr("response_body", AttributeSchema::computed(Type::String, "The response's body, as text."))
                    .attr("json", AttributeSchema::computed(Type::Any, "The body parsed as JSON, or null when it is not JSON.")),
                ..ResourceSchema::default()
            },
        );
        s.data_sources.insert(
            "builtin_file".into(),
            ResourceSchema {
                description: "Reads a file from local disk.".into(),
                block: BlockSchema::default()
                    .attr("path", AttributeSchema::required(Type::String, "The file to read."))
                    .attr("content", AttributeSchema::computed(Type::String, "The file's content."))
                    .attr("id", AttributeSchema::computed(Type::String, "blake3 hash of the content.")),
                ..ResourceSchema::default()
            },
        );
        s
    })
}

fn attrs(v: &Value) -> BTreeMap<String, Value> {
    match v.shallow_unmark() {
        Value::Map(m) => m.clone(),
        _ => BTreeMap::new(),
    }
}

fn get(m: &BTreeMap<String, Value>, k: &str) -> Value {
    m.get(k).cloned().unwrap_or(Value::Null)
}

fn string_attr(m: &BTreeMap<String, Value>, k: &str) -> Option<String> {
    match m.get(k).map(|v| v.clone().unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Paths whose values differ between prior and proposed, among the force-new attributes.
fn replace_reasons(type_name: &str, prior: Option<&Value>, proposed: &Value) -> Vec<ReplaceReason> {
    let Some(prior) = prior else {
        return Vec::new();
    };
    let block = &schema().resources[type_name].block;
    let (p, n) = (attrs(prior), attrs(proposed));
    block
        .attributes
        .iter()
        .filter(|(_, a)| a.force_new)
        .filter(|(k, _)| {
            let (a, b) = (get(&p, k), get(&n, k));
            b.is_unknown() || !flotilla_lang::values_equal(&a.unmark().0, &b.clone().unmark().0)
        })
        .map(|(k, _)| ReplaceReason {
            path: AttrPath::attr(k.clone()),
            reason: "cannot be changed in place".into(),
        })
        .collect()
}

fn random_string(length: usize, special: bool) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const SPECIAL: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&*()-_=+[]{}<>:?";
    let alphabet = if special { SPECIAL } else { ALNUM };
    let mut out = String::with_capacity(length);
    while out.len() < length {
        for b in uuid::Uuid::new_v4().as_bytes() {
            if out.len() == length {
                break;
            }
            // Rejection sampling keeps the distribution uniform.
            let limit = 256 - (256 % alphabet.len());
            if (*b as usize) < limit {
                out.push(alphabet[*b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Parses `500ms`, `30s`, `2m`, `1h`.
fn duration(s: &str, attr: &str) -> ProviderResult<std::time::Duration> {
    flotilla_provider::parse_duration(s).ok_or_else(|| bad_duration(s, attr))
}

fn bad_duration(s: &str, attr: &str) -> ProviderError {
    ProviderError::new(format!(
        "{s:?} is not a duration like \"500ms\", \"30s\" or \"2m\""
    ))
    .at(AttrPath::attr(attr))
}

/// The file's id: the hash of its content, itself sensitive when the content is.
fn file_id(m: &BTreeMap<String, Value>) -> Value {
    let sensitive = !get(m, "sensitive_content").is_null();
    let source = get(
        m,
        if sensitive {
            "sensitive_content"
        } else {
            "content"
        },
    );
    if source.is_unknown() {
        return Value::Unknown;
    }
    let id = Value::String(hash(&content_of(m).unwrap_or_default()));
    if sensitive { id.sensitive() } else { id }
}

fn content_of(m: &BTreeMap<String, Value>) -> Option<String> {
    string_attr(m, "content").or_else(|| string_attr(m, "sensitive_content"))
}

fn hash(s: &str) -> String {
    blake3::hash(s.as_bytes()).to_hex().to_string()
}

fn write_file(path: &str, content: &str, permission: &str) -> ProviderResult<()> {
    let p = PathBuf::from(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            ProviderError::new(format!("cannot create directory {}", dir.display()))
                .with_detail(e.to_string())
        })?;
    }
    let tmp = p.with_extension("flotilla-tmp");
    std::fs::write(&tmp, content)
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| {
            ProviderError::new(format!("cannot write {path}")).with_detail(e.to_string())
        })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = u32::from_str_radix(permission, 8).map_err(|_| {
            ProviderError::new(format!(
                "file_permission {permission:?} is not an octal mode like \"0644\""
            ))
            .at(AttrPath::attr("file_permission"))
        })?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(|e| {
            ProviderError::new(format!("cannot set permissions on {path}"))
                .with_detail(e.to_string())
        })?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl Provider for Builtin {
    fn schema(&self) -> &ProviderSchema {
        schema()
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<ProviderError> {
        let m = attrs(config);
        let mut out = Vec::new();
        if type_name == "builtin_file" {
            let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
            if has("content") && has("sensitive_content") {
                out.push(
                    ProviderError::new("set only one of `content` and `sensitive_content`")
                        .at(AttrPath::attr("sensitive_content")),
                );
            }
            if let Some(p) = string_attr(&m, "file_permission")
                && u32::from_str_radix(&p, 8).is_err()
            {
                out.push(
                    ProviderError::new(format!("{p:?} is not an octal mode like \"0644\""))
                        .at(AttrPath::attr("file_permission")),
                );
            }
        }
        if type_name == "builtin_sleep" {
            for k in ["create_duration", "destroy_duration"] {
                if let Some(d) = string_attr(&m, k)
                    && let Err(e) = duration(&d, k)
                {
                    out.push(e);
                }
            }
        }
        if type_name == "builtin_rollout" {
            if let Some(d) = string_attr(&m, "progress_deadline")
                && let Err(e) = duration(&d, "progress_deadline")
            {
                out.push(e);
            }
            if let Some(f) = string_attr(&m, "on_failure")
                && !["rollback", "pause", "abort"].contains(&f.as_str())
            {
                out.push(
                    ProviderError::new(format!(
                        "`on_failure` is rollback, pause or abort, not {f:?}"
                    ))
                    .at(AttrPath::attr("on_failure")),
                );
            }
        }
        if type_name == "builtin_random"
            && let Some(Value::Number(n)) = m.get("length")
            && n.to_usize().is_none_or(|l| l < 1)
        {
            out.push(
                ProviderError::new("`length` must be a whole number of at least 1")
                    .at(AttrPath::attr("length")),
            );
        }
        out
    }

    async fn configure(&self, _config: &Value) -> ProviderResult<()> {
        Ok(())
    }

    async fn plan_change(&self, req: PlanRequest<'_>) -> ProviderResult<PlanResponse> {
        let mut m = attrs(req.proposed);
        // Defaults first, so a default equal to the prior value is not mistaken for a change.
        match req.type_name {
            "builtin_data" => {
                m.insert("output".into(), get(&m, "input"));
            }
            "builtin_file" => {
                if get(&m, "file_permission").is_null() {
                    m.insert("file_permission".into(), Value::string("0644"));
                }
                let id = file_id(&m);
                m.insert("id".into(), id);
            }
            "builtin_random" => {
                if get(&m, "length").is_null() {
                    m.insert("length".into(), Value::int(16));
                }
                if get(&m, "special").is_null() {
                    m.insert("special".into(), Value::Bool(false));
                }
            }
            "builtin_sleep" | "builtin_rollout" => {}
            other => return Err(ProviderError::new(format!("unknown resource type {other}"))),
        }
        let requires_replace = replace_reasons(req.type_name, req.prior, &Value::Map(m.clone()));
        let prior = req.prior.map(attrs).filter(|_| requires_replace.is_empty());
        let generated: &[&str] = match req.type_name {
            "builtin_data" => &["id"],
            "builtin_random" => &["result", "id"],
            "builtin_sleep" => &["id"],
            _ => &[],
        };
        for k in generated {
            let v = prior.as_ref().map_or(Value::Unknown, |p| get(p, k));
            m.insert((*k).into(), v);
        }
        Ok(PlanResponse {
            planned: Value::Map(m),
            requires_replace,
            notes: Vec::new(),
        })
    }

    async fn apply_change(&self, req: ApplyRequest<'_>) -> ProviderResult<ApplyResponse> {
        let Some(planned) = req.planned else {
            if req.type_name == "builtin_sleep"
                && let Some(d) = req
                    .prior
                    .and_then(|p| string_attr(&attrs(p), "destroy_duration"))
            {
                tokio::time::sleep(duration(&d, "destroy_duration")?).await;
            }
            if req.type_name == "builtin_file"
                && let Some(path) = req.prior.and_then(|p| string_attr(&attrs(p), "path"))
            {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(ProviderError::new(format!("cannot delete {path}"))
                            .with_detail(e.to_string()));
                    }
                }
            }
            return Ok(ApplyResponse::done(None));
        };
        let mut m = attrs(planned);
        match req.type_name {
            "builtin_data" => {
                if get(&m, "id").is_unknown() || get(&m, "id").is_null() {
                    m.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
                }
            }
            "builtin_file" => {
                let path = string_attr(&m, "path").ok_or_else(|| {
                    ProviderError::new("`path` is required").at(AttrPath::attr("path"))
                })?;
                let content = content_of(&m).unwrap_or_default();
                let perm = string_attr(&m, "file_permission").unwrap_or_else(|| "0644".into());
                write_file(&path, &content, &perm)?;
                let id = file_id(&m);
                m.insert("id".into(), id);
            }
            "builtin_random" => {
                if get(&m, "result").is_unknown() {
                    let len = match get(&m, "length") {
                        Value::Number(n) => n.to_usize().unwrap_or(16),
                        _ => 16,
                    };
                    let special = matches!(get(&m, "special"), Value::Bool(true));
                    let s = random_string(len, special);
                    m.insert("result".into(), Value::String(s.clone()));
                    m.insert("id".into(), Value::String(s));
                }
            }
            "builtin_sleep" => {
                if get(&m, "id").is_unknown() {
                    if let Some(d) = string_attr(&m, "create_duration") {
                        tokio::time::sleep(duration(&d, "create_duration")?).await;
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0);
                    m.insert("id".into(), Value::String(now.to_string()));
                }
            }
            // Recorded as planned: the execution graph's gates carry the rollout out.
            "builtin_rollout" => {}
            other => return Err(ProviderError::new(format!("unknown resource type {other}"))),
        }
        Ok(ApplyResponse::done(Some(Value::Map(m))))
    }

    async fn read(&self, req: ReadRequest<'_>) -> ProviderResult<ReadResponse> {
        if req.type_name != "builtin_file" {
            return Ok(ReadResponse {
                state: Some(req.current.clone()),
            });
        }
        let mut m = attrs(req.current);
        let Some(path) = string_attr(&m, "path") else {
            return Ok(ReadResponse {
                state: Some(req.current.clone()),
            });
        };
        match std::fs::read_to_string(&path) {
            Ok(content) => {
                let key = if get(&m, "sensitive_content").is_null() {
                    "content"
                } else {
                    "sensitive_content"
                };
                let content = Value::String(content);
                m.insert(
                    key.into(),
                    if key == "content" {
                        content
                    } else {
                        content.sensitive()
                    },
                );
                let id = file_id(&m);
                m.insert("id".into(), id);
                Ok(ReadResponse {
                    state: Some(Value::Map(m)),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReadResponse { state: None }),
            Err(e) => {
                Err(ProviderError::new(format!("cannot read {path}")).with_detail(e.to_string()))
            }
        }
    }

    async fn read_data(&self, req: ReadDataRequest<'_>) -> ProviderResult<Value> {
        if req.type_name == "builtin_http" {
            return http::read(req.config).await;
        }
        let mut m = attrs(req.config);
        let path = string_attr(&m, "path")
            .ok_or_else(|| ProviderError::new("`path` is required").at(AttrPath::attr("path")))?;
        let content = std::fs::read_to_string(&path).map_err(|e| {
            ProviderError::new(format!("cannot read {path}"))
                .with_detail(e.to_string())
                .at(AttrPath::attr("path"))
        })?;
        m.insert("id".into(), Value::String(hash(&content)));
        m.insert("content".into(), Value::String(content));
        Ok(Value::Map(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn data_copies_input_and_replaces_on_trigger() {
        rt().block_on(async {
            let p = Builtin;
            let proposed = Value::object([
                ("input", Value::string("a")),
                ("triggers_replace", Value::int(1)),
            ]);
            let plan = p
                .plan_change(PlanRequest {
                    type_name: "builtin_data",
                    prior: None,
                    proposed: &proposed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            assert_eq!(plan.planned.get_attr("output"), Some(Value::string("a")));
            assert!(plan.planned.get_attr("id").unwrap().is_unknown());
            let applied = p
                .apply_change(ApplyRequest {
                    type_name: "builtin_data",
                    prior: None,
                    planned: Some(&plan.planned),
                })
                .await
                .unwrap();
            let state = applied.new_state.unwrap();
            assert!(!state.contains_unknown());

            let changed = Value::object([
                ("input", Value::string("a")),
                ("triggers_replace", Value::int(2)),
            ]);
            let plan = p
                .plan_change(PlanRequest {
                    type_name: "builtin_data",
                    prior: Some(&state),
                    proposed: &changed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            assert_eq!(plan.requires_replace.len(), 1);
            assert_eq!(
                plan.requires_replace[0].path.to_string(),
                "triggers_replace"
            );
        });
    }

    #[test]
    fn file_round_trip_and_drift() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out/hello.txt").display().to_string();
            let p = Builtin;
            let proposed = Value::object([
                ("path", Value::string(&path)),
                ("content", Value::string("hi")),
            ]);
            let plan = p
                .plan_change(PlanRequest {
                    type_name: "builtin_file",
                    prior: None,
                    proposed: &proposed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            let state = p
                .apply_change(ApplyRequest {
                    type_name: "builtin_file",
                    prior: None,
                    planned: Some(&plan.planned),
                })
                .await
                .unwrap()
                .new_state
                .unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "hi");
            std::fs::write(&path, "edited").unwrap();
            let read = p
                .read(ReadRequest {
                    type_name: "builtin_file",
                    current: &state,
                })
                .await
                .unwrap();
            assert_eq!(
                read.state.unwrap().get_attr("content"),
                Some(Value::string("edited"))
            );
            std::fs::remove_file(&path).unwrap();
            let read = p
                .read(ReadRequest {
                    type_name: "builtin_file",
                    current: &state,
                })
                .await
                .unwrap();
            assert_eq!(read.state, None);
        });
    }

    #[test]
    fn random_is_stable_until_replaced() {
        rt().block_on(async {
            let p = Builtin;
            let proposed = Value::object([("length", Value::int(24))]);
            let plan = p
                .plan_change(PlanRequest {
                    type_name: "builtin_random",
                    prior: None,
                    proposed: &proposed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            let state = p
                .apply_change(ApplyRequest {
                    type_name: "builtin_random",
                    prior: None,
                    planned: Some(&plan.planned),
                })
                .await
                .unwrap()
                .new_state
                .unwrap();
            let Some(Value::String(s)) = state.get_attr("result") else {
                panic!()
            };
            assert_eq!(s.len(), 24);
            let again = p
                .plan_change(PlanRequest {
                    type_name: "builtin_random",
                    prior: Some(&state),
                    proposed: &proposed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            assert_eq!(again.planned.get_attr("result"), Some(Value::String(s)));
        });
    }

    #[test]
    fn sleep_waits_on_create_only() {
        rt().block_on(async {
            let p = Builtin;
            let proposed = Value::object([("create_duration", Value::string("150ms"))]);
            let plan = p
                .plan_change(PlanRequest {
                    type_name: "builtin_sleep",
                    prior: None,
                    proposed: &proposed,
                    dependencies_pending: false,
                    applying: false,
                })
                .await
                .unwrap();
            let start = std::time::Instant::now();
            let state = p
                .apply_change(ApplyRequest {
                    type_name: "builtin_sleep",
                    prior: None,
                    planned: Some(&plan.planned),
                })
                .await
                .unwrap()
                .new_state
                .unwrap();
            assert!(start.elapsed() >= std::time::Duration::from_millis(150));
            assert!(!state.contains_unknown());
            assert_eq!(
                p.validate(
                    "builtin_sleep",
                    &Value::object([("create_duration", Value::string("soon"))])
                )
                .len(),
                1
            );
        });
    }
}
