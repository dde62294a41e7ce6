//! Validation and defaulting of the built-in kinds, at the level a client notices: required
//! fields, name rules, immutable fields, and the defaults that make naive diffs perpetual.

use crate::kinds::Builtin;
use crate::names::{NameRule, is_config_key};
use crate::status::Cause;
use base64::Engine;
use serde_json::{Map, Value, json};

pub fn name_rule(kind: Builtin) -> NameRule {
    match kind {
        Builtin::Namespace => NameRule::Label,
        Builtin::Service => NameRule::Dns1035,
        _ => NameRule::Subdomain,
    }
}

/// Defaults, then validates, a built-in object about to be written. `old` is the stored object
/// on updates.
pub fn prepare(kind: Builtin, obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    match kind {
        Builtin::Namespace => namespace(obj),
        Builtin::Secret => secret(obj, old, causes),
        Builtin::ConfigMap => config_map(obj, old, causes),
        Builtin::Service => service(obj, old, causes),
        Builtin::Deployment => deployment(obj, old, causes),
        Builtin::ReplicaSet => replica_set(obj, old, causes),
        Builtin::Crd => crd(obj, old, causes),
        Builtin::Event => {
            if obj.get("involvedObject").is_none() {
                causes.push(Cause::required("involvedObject"));
            }
        }
        Builtin::ServiceAccount | Builtin::Lease | Builtin::Node | Builtin::Rbac => {}
    }
}

fn ensure_object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.get(key).is_some_and(Value::is_object) {
        obj[key] = json!({});
    }
    obj[key].as_object_mut().expect("just made an object")
}

/// Defaults the fields that are keys of list-maps (`protocol` of container and Service
/// ports, keyed by port and protocol) in an applied configuration before it is merged, as
/// the API server defaults an apply request: otherwise a port applied without `protocol`
/// would not match the live port, defaulted to `TCP`, and the list would gain a copy.
pub fn default_list_keys(obj: &mut Value) {
    match obj {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if k == "ports"
                    && let Value::Array(ports) = v
                {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        if port.contains_key("containerPort") || port.contains_key("port") {
                            default(port, "protocol", json!("TCP"));
                        }
                    }
                } else {
                    default_list_keys(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_list_keys),
        _ => {}
    }
}

fn default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn namespace(obj: &mut Value) {
    let spec = ensure_object(obj, "spec");
    default(spec, "finalizers", json!(["kubernetes"]));
    let status = ensure_object(obj, "status");
    default(status, "phase", json!("Active"));
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), name);
        }
    }
}

fn check_keys(obj: &Value, field: &str, causes: &mut Vec<Cause>) {
    if let Some(map) = obj.get(field).and_then(Value::as_object) {
        for key in map.keys() {
            if !is_config_key(key) {
                causes.push(Cause::invalid(format!("{field}[{key}]"), &json!(key), "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
            }
        }
    }
}

fn check_immutable_data(
    obj: &Value,
    old: Option<&Value>,
    fields: &[&str],
    causes: &mut Vec<Cause>,
) {
    let Some(old) = old else { return };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    for field in fields {
        if obj.get(*field) != old.get(*field) {
            causes.push(Cause::forbidden(
                *field,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if obj.get("immutable") != old.get("immutable") {
        causes.push(Cause::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
}

fn secret(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let map = obj.as_object_mut().expect("objects are JSON objects");
    default(map, "type", json!("Opaque"));
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        for (key, value) in string_data {
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            data[key] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            let decodes = value
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !decodes {
                causes.push(Cause::invalid(
                    format!("data[{key}]"),
                    value,
                    "illegal base64 data",
                ));
            }
        }
    }
    check_keys(obj, "data", causes);
    if let Some(old) = old
        && old.get("type") != obj.get("type")
    {
        causes.push(Cause::invalid(
            "type",
            obj.get("type").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    check_immutable_data(obj, old, &["data"], causes);
}

fn config_map(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    check_keys(obj, "data", causes);
    check_keys(obj, "binaryData", causes);
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (key, value) in data {
            if !value.is_string() {
                causes.push(Cause::invalid(
                    format!("data[{key}]"),
                    value,
                    "must be a string",
                ));
            }
        }
    }
    check_immutable_data(obj, old, &["data", "binaryData"], causes);
}

fn service(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let old_spec = old
        .and_then(|o| o.get("spec"))
        .cloned()
        .unwrap_or(json!({}));
    let spec = ensure_object(obj, "spec");
    default(spec, "type", json!("ClusterIP"));
    default(spec, "sessionAffinity", json!("None"));
    default(spec, "internalTrafficPolicy", json!("Cluster"));
    let service_type = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if !matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(Cause::unsupported(
            "spec.type",
            &json!(service_type),
            &[
                json!("ClusterIP"),
                json!("ExternalName"),
                json!("LoadBalancer"),
                json!("NodePort"),
            ],
        ));
    }
    if service_type != "ExternalName" {
        // The allocator hands out a stable address from the service range; the same name
        // always gets the same address so sandbox runs are deterministic.
        let allocated = old_spec
            .get("clusterIP")
            .cloned()
            .unwrap_or_else(|| json!(allocate_ip(&obj["metadata"])));
        let spec = ensure_object(obj, "spec");
        default(spec, "clusterIP", allocated.clone());
        let ip = spec["clusterIP"].clone();
        default(spec, "clusterIPs", json!([ip]));
        default(spec, "ipFamilies", json!(["IPv4"]));
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
        if old.is_some()
            && old_spec.get("clusterIP").is_some()
            && spec.get("clusterIP") != old_spec.get("clusterIP")
        {
            causes.push(Cause::invalid(
                "spec.clusterIPs[0]",
                &spec["clusterIP"],
                "may not change once set",
            ));
        }
    } else if spec.get("externalName").is_none() {
        causes.push(Cause::required("spec.externalName"));
    }
    let spec = ensure_object(obj, "spec");
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    match spec.get_mut("ports").and_then(Value::as_array_mut) {
        Some(ports) => {
            for (i, port) in ports.iter_mut().enumerate() {
                let Some(port) = port.as_object_mut() else {
                    continue;
                };
                default(port, "protocol", json!("TCP"));
                match port.get("port").and_then(Value::as_i64) {
                    Some(p) if (1..=65535).contains(&p) => {
                        let target = port.get("port").cloned().unwrap_or(Value::Null);
                        default(port, "targetPort", target);
                    }
                    Some(p) => causes.push(Cause::invalid(
                        format!("spec.ports[{i}].port"),
                        &json!(p),
                        "must be between 1 and 65535, inclusive",
                    )),
                    None => causes.push(Cause::required(format!("spec.ports[{i}].port"))),
                }
            }
            if ports.len() > 1 {
                for (i, port) in ports.iter().enumerate() {
                    if port.get("name").is_none() {
                        causes.push(Cause::required(format!("spec.ports[{i}].name")));
                    }
                }
            }
        }
        None if service_type != "ExternalName" && !headless => {
            causes.push(Cause::required("spec.ports"));
        }
        None => {}
    }
}

fn allocate_ip(metadata: &Value) -> String {
    let key = format!(
        "{}/{}",
        metadata["namespace"].as_str().unwrap_or(""),
        metadata["name"].as_str().unwrap_or("")
    );
    let hash = blake_ish(key.as_bytes());
    format!("10.96.{}.{}", (hash >> 8) % 256, (hash % 253) + 2)
}

/// FNV-1a: a small, stable hash for deterministic address allocation.
fn blake_ish(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

fn deployment(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = ensure_object(obj, "spec");
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    default(
        spec,
        "strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
    );
    workload(spec, old, causes);
}

fn replica_set(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = ensure_object(obj, "spec");
    default(spec, "replicas", json!(1));
    workload(spec, old, causes);
}

/// What Deployments and ReplicaSets share: a selector matching the template's labels (and
/// never changing), and the pod template's defaults.
fn workload(
    spec: &mut serde_json::Map<String, Value>,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    match spec.get("selector") {
        None => causes.push(Cause::required("spec.selector")),
        Some(selector) => {
            let labels = spec
                .get("template")
                .and_then(|t| t.pointer("/metadata/labels"))
                .cloned()
                .unwrap_or(json!({}));
            if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
                let matches = match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
                if !matches {
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &labels,
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            if let Some(old_selector) = old.and_then(|o| o.pointer("/spec/selector"))
                && old_selector != selector
            {
                causes.push(Cause::invalid(
                    "spec.selector",
                    selector,
                    "field is immutable",
                ));
            }
        }
    }
    let Some(pod) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    else {
        causes.push(Cause::required("spec.template.spec.containers"));
        return;
    };
    default(pod, "restartPolicy", json!("Always"));
    default(pod, "terminationGracePeriodSeconds", json!(30));
    default(pod, "dnsPolicy", json!("ClusterFirst"));
    default(pod, "schedulerName", json!("default-scheduler"));
    default(pod, "securityContext", json!({}));
    match pod.get_mut("containers").and_then(Value::as_array_mut) {
        Some(containers) if !containers.is_empty() => {
            for (i, container) in containers.iter_mut().enumerate() {
                let Some(c) = container.as_object_mut() else {
                    continue;
                };
                if c.get("name").is_none() {
                    causes.push(Cause::required(format!(
                        "spec.template.spec.containers[{i}].name"
                    )));
                }
                match c.get("image").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!(
                        "spec.template.spec.containers[{i}].image"
                    ))),
                    Some(image) => {
                        let tag = image.rsplit('/').next().unwrap_or(image);
                        let policy = if !tag.contains(':') || tag.ends_with(":latest") {
                            "Always"
                        } else {
                            "IfNotPresent"
                        };
                        default(c, "imagePullPolicy", json!(policy));
                    }
                }
                default(c, "terminationMessagePath", json!("/dev/termination-log"));
                default(c, "terminationMessagePolicy", json!("File"));
                default(c, "resources", json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
        _ => causes.push(Cause::required("spec.template.spec.containers")),
    }
}

fn crd(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let spec = ensure_object(obj, "spec");
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(Cause::unsupported(
            "spec.scope",
            &json!(other),
            &[json!("Cluster"), json!("Namespaced")],
        )),
        None => causes.push(Cause::required("spec.scope")),
    }
    let names = spec.entry("names").or_insert_with(|| json!({}));
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    if let Some(names) = names.as_object_mut() {
        default(names, "singular", json!(kind.to_lowercase()));
        default(names, "listKind", json!(format!("{kind}List")));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    default(spec, "conversion", json!({"strategy": "None"}));
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            &Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("spec.versions[{i}].name")));
        }
        if v.get("served").is_none() {
            causes.push(Cause::required(format!("spec.versions[{i}].served")));
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None => causes.push(Cause::required(format!(
                "spec.versions[{i}].schema.openAPIV3Schema"
            ))),
            Some(doc) => {
                if let Err(message) = crate::schema::Schema::parse(
                    doc,
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                ) {
                    let (field, detail) = message
                        .split_once(": ")
                        .unwrap_or(("spec.versions", message.as_str()));
                    causes.push(Cause {
                        reason: "FieldValueInvalid",
                        message: detail.to_string(),
                        field: field.to_string(),
                    });
                }
                if doc.get("type").and_then(Value::as_str) != Some("object") {
                    causes.push(Cause::unsupported(
                        format!("spec.versions[{i}].schema.openAPIV3Schema.type"),
                        doc.get("type").unwrap_or(&Value::Null),
                        &[json!("object")],
                    ));
                }
            }
        }
    }
    if let Some(old_spec) = old.and_then(|o| o.get("spec")) {
        let spec = &obj["spec"];
        if old_spec.get("scope") != spec.get("scope") {
            causes.push(Cause::invalid(
                "spec.scope",
                &spec["scope"],
                "field is immutable",
            ));
        }
        if old_spec.get("group") != spec.get("group") {
            causes.push(Cause::invalid(
                "spec.group",
                &spec["group"],
                "field is immutable",
            ));
        }
    }
    // Established at once: the sandbox has no controller lag to simulate here.
    let stored: Vec<Value> = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    let accepted = obj["spec"]["names"].clone();
    let status = ensure_object(obj, "status");
    status.insert("acceptedNames".into(), accepted);
    let mut stored_versions = status
        .get("storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in stored {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    status.insert("storedVersions".into(), Value::Array(stored_versions));
}

/// The conditions a freshly accepted CRD reports.
pub fn crd_conditions(now: &str, terminating: bool) -> Value {
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}),
    ];
    if terminating {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResourceDefinition marked for deletion; instance deletion in progress", "lastTransitionTime": now}));
    }
    Value::Array(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Builtin, mut obj: Value, old: Option<&Value>) -> (Value, Vec<String>) {
        let mut causes = Vec::new();
        prepare(kind, &mut obj, old, &mut causes);
        (obj, causes.iter().map(Cause::render).collect())
    }

    #[test]
    fn deployment_defaults_and_selector_rules() {
        let obj = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        let (out, causes) = run(Builtin::Deployment, obj.clone(), None);
        assert!(causes.is_empty(), "{causes:?}");
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
            "TCP"
        );
        let mut changed = obj.clone();
        changed["spec"]["selector"]["matchLabels"]["app"] = json!("api");
        let (_, causes) = run(Builtin::Deployment, changed, Some(&out));
        assert!(
            causes.contains(
                &"spec.selector: Invalid value: \"object\": field is immutable".to_string()
            ),
            "{causes:?}"
        );
    }

    #[test]
    fn secret_string_data_and_immutability() {
        let (out, causes) = run(
            Builtin::Secret,
            json!({"stringData": {"password": "hunter2"}, "immutable": true}),
            None,
        );
        assert!(causes.is_empty());
        assert_eq!(out["data"]["password"], "aHVudGVyMg==");
        assert_eq!(out["type"], "Opaque");
        let (_, causes) = run(
            Builtin::Secret,
            json!({"data": {"password": "eA=="}, "immutable": true}),
            Some(&out),
        );
        assert_eq!(
            causes,
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let (_, causes) = run(Builtin::Secret, json!({"data": {"k": "not base64!"}}), None);
        assert_eq!(
            causes,
            vec!["data[k]: Invalid value: \"not base64!\": illegal base64 data"]
        );
    }

    #[test]
    fn service_defaults_are_stable() {
        let obj = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
        let (a, causes) = run(Builtin::Service, obj.clone(), None);
        assert!(causes.is_empty());
        let (b, _) = run(Builtin::Service, obj, None);
        assert_eq!(a, b);
        assert_eq!(
            a["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        let (_, causes) = run(
            Builtin::Service,
            json!({"metadata": {"name": "x"}, "spec": {}}),
            None,
        );
        assert_eq!(causes, vec!["spec.ports: Required value"]);
    }

    #[test]
    fn crd_rules() {
        let (_, causes) = run(
            Builtin::Crd,
            json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
            None,
        );
        assert_eq!(causes.len(), 1);
        assert!(
            causes[0].contains("exactly one version marked as storage"),
            "{causes:?}"
        );
        let (_, causes) = run(
            Builtin::Crd,
            json!({"metadata": {"name": "wrong.example.com"}, "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
            None,
        );
        assert_eq!(
            causes,
            vec![
                "metadata.name: Invalid value: \"wrong.example.com\": must be spec.names.plural+\".\"+spec.group"
            ]
        );
    }
}
