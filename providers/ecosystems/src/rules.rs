//! What the platforms' validating webhooks refuse that a schema cannot say, as pure functions
//! over an object's `spec`, so the providers' offline checks and the sandbox's admission
//! apply the same rules. A `null` list element stands for a part not known yet (offline, a
//! value built from another resource) and is skipped.

use serde_json::Value;

/// One step of the path to the field at fault, below `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object's key.
    Key(String),
    /// A list's element.
    Index(usize),
}

/// A refusal: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field, below `spec`.
    pub path: Vec<Step>,
    /// What is wrong (istiod's wording where it has one).
    pub message: String,
    /// How to fix it.
    pub hint: &'static str,
}

impl Violation {
    /// `spec.http[1].redirect`.
    pub fn field(&self) -> String {
        let mut out = String::from("spec");
        for s in &self.path {
            match s {
                Step::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

fn key(k: &str) -> Step {
    Step::Key(k.to_string())
}

fn set(v: &Value, k: &str) -> bool {
    !v[k].is_null()
}

/// istiod's `validation.istio.io` rules for a kind of Istio's.
pub fn istio(kind: &str, spec: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    match kind {
        "VirtualService" => {
            for (i, host) in spec["hosts"].as_array().into_iter().flatten().enumerate() {
                if let Some(h) = host.as_str()
                    && let Some(why) = bad_host(h)
                {
                    out.push(Violation {
                        path: vec![key("hosts"), Step::Index(i)],
                        message: format!("host {h:?} is not a valid host: {why}"),
                        hint: "write a DNS name (`checkout`, `checkout.shop.svc.cluster.local`), optionally with a leading `*.`",
                    });
                }
            }
            for (i, route) in spec["http"].as_array().into_iter().flatten().enumerate() {
                if !route.is_null() {
                    http_route(route, i, &mut out);
                }
            }
        }
        "AuthorizationPolicy" => {
            let action = spec["action"].as_str().unwrap_or("ALLOW");
            if action == "CUSTOM" && spec["provider"]["name"].is_null() {
                out.push(Violation {
                    path: vec![key("provider")],
                    message: "a CUSTOM policy needs `provider.name`".into(),
                    hint: "name the extension provider (from the mesh config) that decides",
                });
            }
            if action != "CUSTOM" && set(spec, "provider") {
                out.push(Violation {
                    path: vec![key("provider")],
                    message: format!("`provider` applies only to action CUSTOM, not {action}"),
                    hint: "drop `provider`, or set `action = \"CUSTOM\"`",
                });
            }
            let targets = ["selector", "targetRef", "targetRefs"]
                .iter()
                .filter(|k| set(spec, k))
                .count();
            if targets > 1 {
                out.push(Violation {
                    path: Vec::new(),
                    message: "set at most one of `selector`, `targetRef` and `targetRefs`".into(),
                    hint: "choose the workloads by one of them",
                });
            }
        }
        _ => {}
    }
    out
}

/// Why a VirtualService host is malformed, if it is.
fn bad_host(h: &str) -> Option<&'static str> {
    if h.is_empty() {
        return Some("it is empty");
    }
    if h.contains("://") {
        return Some("it has a scheme; hosts are names, not URLs");
    }
    if h.contains('/') {
        return Some("it has a path");
    }
    let name = h.strip_prefix("*.").unwrap_or(h);
    if name != "*" && name.contains('*') {
        return Some("a wildcard may only be the leading label (`*.example.com`)");
    }
    None
}

/// One HTTP route: one of `route`, `redirect`, `directResponse` (or a delegate), the
/// combinations istiod refuses, and string matches with exactly one kind.
fn http_route(route: &Value, i: usize, out: &mut Vec<Violation>) {
    let has = |k: &str| set(route, k);
    if !(has("route") || has("redirect") || has("directResponse") || has("delegate")) {
        out.push(Violation {
            path: vec![key("http"), Step::Index(i)],
            message: "HTTP route, redirect or direct_response is required".into(),
            hint: "give the route a `route` (destinations), a `redirect` or a `directResponse`",
        });
    }
    for (a, b) in [
        ("route", "redirect"),
        ("route", "directResponse"),
        ("redirect", "rewrite"),
        ("redirect", "fault"),
        ("directResponse", "fault"),
        ("directResponse", "rewrite"),
        ("mirror", "mirrors"),
    ] {
        if has(a) && has(b) {
            out.push(Violation {
                path: vec![key("http"), Step::Index(i), key(b)],
                message: format!("`{a}` and `{b}` cannot both be set on an HTTP route"),
                hint: "keep one of them",
            });
        }
    }
    for (m, matched) in route["match"].as_array().into_iter().flatten().enumerate() {
        for field in ["uri", "scheme", "method", "authority"] {
            let v = &matched[field];
            if v.is_object() {
                let kinds = ["exact", "prefix", "regex"]
                    .iter()
                    .filter(|k| set(v, k))
                    .count();
                if kinds != 1 {
                    out.push(Violation {
                        path: vec![key("http"), Step::Index(i), key("match"), Step::Index(m), key(field)],
                        message: format!(
                            "a `{field}` match sets exactly one of `exact`, `prefix` and `regex`, not {kinds}"
                        ),
                        hint: "keep one kind of match",
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_and_policies() {
        let v = istio(
            "VirtualService",
            &json!({"hosts": ["https://x"], "http": [null, {"route": [], "redirect": {}}]}),
        );
        let fields: Vec<String> = v.iter().map(Violation::field).collect();
        assert_eq!(fields, ["spec.hosts[0]", "spec.http[1].redirect"]);
        assert!(
            istio(
                "AuthorizationPolicy",
                &json!({"action": "CUSTOM", "provider": {"name": "x"}})
            )
            .is_empty()
        );
        assert_eq!(istio("Gateway", &json!({})), Vec::new());
    }
}
