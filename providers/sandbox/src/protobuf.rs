//! Request bodies in Kubernetes' protobuf encoding, as kubectl's typed commands send them
//! (`kubectl create namespace`, `create configmap`, `create secret`, `create serviceaccount`).
//!
//! Also `kubectl create deployment|service|role|rolebinding|clusterrole|clusterrolebinding`.
//! A body is the magic `k8s\0` and a `runtime.Unknown` message: the type (apiVersion, kind)
//! and the object's own message bytes. The object is decoded with a table of its fields
//! (protobuf field number, JSON name, type) into the JSON object the rest of the server
//! works with. The tables hold the field numbers of the upstream `generated.proto` files for
//! the kinds below. Go writes every non-pointer field whether set or not, so an empty string
//! is omitted from the JSON and an unknown field holding its zero value is skipped; a kind
//! without a table, or an unknown field with a value, is refused with 415 and a hint to send
//! JSON, never dropped silently.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// How a field is encoded and what it becomes in JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    /// `bytes`, base64 in JSON.
    Bytes,
    /// `metav1.Time` (seconds, nanos), RFC 3339 in JSON.
    Time,
    Msg(&'static [Field]),
    RepeatedStr,
    RepeatedMsg(&'static [Field]),
    MapStr,
    MapBytes,
    /// `map<string, Quantity>`: quantities as strings.
    MapQuantity,
    /// `intstr.IntOrString` (type, intVal, strVal): a number or a string in JSON.
    IntOrString,
}

/// One field of a message: number, JSON name, type.
type Field = (u32, &'static str, Ty);

const TYPE_META: &[Field] = &[(1, "apiVersion", Ty::Str), (2, "kind", Ty::Str)];
const UNKNOWN: &[Field] = &[
    (1, "typeMeta", Ty::Msg(TYPE_META)),
    (2, "raw", Ty::Bytes),
    (3, "contentEncoding", Ty::Str),
    (4, "contentType", Ty::Str),
];

const OWNER_REFERENCE: &[Field] = &[
    (1, "kind", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
    (5, "apiVersion", Ty::Str),
    (6, "controller", Ty::Bool),
    (7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (4, "selfLink", Ty::Str),
    (5, "uid", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "generation", Ty::Int),
    (8, "creationTimestamp", Ty::Time),
    (9, "deletionTimestamp", Ty::Time),
    (10, "deletionGracePeriodSeconds", Ty::Int),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (13, "ownerReferences", Ty::RepeatedMsg(OWNER_REFERENCE)),
    (14, "finalizers", Ty::RepeatedStr),
];

const NAMESPACE_SPEC: &[Field] = &[(1, "finalizers", Ty::RepeatedStr)];
const NAMESPACE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    (3, "status", Ty::Msg(&[(1, "phase", Ty::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::Bool),
];

const OBJECT_REFERENCE: &[Field] = &[
    (1, "kind", Ty::Str),
    (2, "namespace", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
    (5, "apiVersion", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "fieldPath", Ty::Str),
];

const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "secrets", Ty::RepeatedMsg(OBJECT_REFERENCE)),
    (
        3,
        "imagePullSecrets",
        Ty::RepeatedMsg(&[(1, "name", Ty::Str)]),
    ),
    (4, "automountServiceAccountToken", Ty::Bool),
];

const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", Ty::MapStr),
    (
        2,
        "matchExpressions",
        Ty::RepeatedMsg(&[
            (1, "key", Ty::Str),
            (2, "operator", Ty::Str),
            (3, "values", Ty::RepeatedStr),
        ]),
    ),
];

const CONTAINER: &[Field] = &[
    (1, "name", Ty::Str),
    (2, "image", Ty::Str),
    (3, "command", Ty::RepeatedStr),
    (4, "args", Ty::RepeatedStr),
    (5, "workingDir", Ty::Str),
    (
        6,
        "ports",
        Ty::RepeatedMsg(&[
            (1, "name", Ty::Str),
            (2, "hostPort", Ty::Int),
            (3, "containerPort", Ty::Int),
            (4, "protocol", Ty::Str),
            (5, "hostIP", Ty::Str),
        ]),
    ),
    (
        7,
        "env",
        Ty::RepeatedMsg(&[(1, "name", Ty::Str), (2, "value", Ty::Str)]),
    ),
    (
        8,
        "resources",
        Ty::Msg(&[
            (1, "limits", Ty::MapQuantity),
            (2, "requests", Ty::MapQuantity),
        ]),
    ),
    (13, "terminationMessagePath", Ty::Str),
    (14, "imagePullPolicy", Ty::Str),
    (16, "stdin", Ty::Bool),
    (17, "stdinOnce", Ty::Bool),
    (18, "tty", Ty::Bool),
    (20, "terminationMessagePolicy", Ty::Str),
];

const POD_SPEC: &[Field] = &[
    (2, "containers", Ty::RepeatedMsg(CONTAINER)),
    (3, "restartPolicy", Ty::Str),
    (4, "terminationGracePeriodSeconds", Ty::Int),
    (5, "activeDeadlineSeconds", Ty::Int),
    (6, "dnsPolicy", Ty::Str),
    (7, "nodeSelector", Ty::MapStr),
    (8, "serviceAccountName", Ty::Str),
    (9, "serviceAccount", Ty::Str),
    (10, "nodeName", Ty::Str),
    (11, "hostNetwork", Ty::Bool),
    (
        15,
        "imagePullSecrets",
        Ty::RepeatedMsg(&[(1, "name", Ty::Str)]),
    ),
    (16, "hostname", Ty::Str),
    (17, "subdomain", Ty::Str),
    (19, "schedulerName", Ty::Str),
    (20, "initContainers", Ty::RepeatedMsg(CONTAINER)),
    (21, "automountServiceAccountToken", Ty::Bool),
    (24, "priorityClassName", Ty::Str),
    (25, "priority", Ty::Int),
    (30, "enableServiceLinks", Ty::Bool),
];

const POD_TEMPLATE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(POD_SPEC)),
];

const DEPLOYMENT: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Ty::Msg(&[
            (1, "replicas", Ty::Int),
            (2, "selector", Ty::Msg(LABEL_SELECTOR)),
            (3, "template", Ty::Msg(POD_TEMPLATE)),
            (
                4,
                "strategy",
                Ty::Msg(&[
                    (1, "type", Ty::Str),
                    (
                        2,
                        "rollingUpdate",
                        Ty::Msg(&[
                            (1, "maxUnavailable", Ty::IntOrString),
                            (2, "maxSurge", Ty::IntOrString),
                        ]),
                    ),
                ]),
            ),
            (5, "minReadySeconds", Ty::Int),
            (6, "revisionHistoryLimit", Ty::Int),
            (7, "paused", Ty::Bool),
            (9, "progressDeadlineSeconds", Ty::Int),
        ]),
    ),
    // Clients send an empty status; what the controller writes is never sent.
    (3, "status", Ty::Msg(&[])),
];

const SERVICE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Ty::Msg(&[
            (
                1,
                "ports",
                Ty::RepeatedMsg(&[
                    (1, "name", Ty::Str),
                    (2, "protocol", Ty::Str),
                    (3, "port", Ty::Int),
                    (4, "targetPort", Ty::IntOrString),
                    (5, "nodePort", Ty::Int),
                    (6, "appProtocol", Ty::Str),
                ]),
            ),
            (2, "selector", Ty::MapStr),
            (3, "clusterIP", Ty::Str),
            (4, "type", Ty::Str),
            (5, "externalIPs", Ty::RepeatedStr),
            (7, "sessionAffinity", Ty::Str),
            (8, "loadBalancerIP", Ty::Str),
            (10, "externalName", Ty::Str),
            (11, "externalTrafficPolicy", Ty::Str),
            (18, "clusterIPs", Ty::RepeatedStr),
            (19, "ipFamilies", Ty::RepeatedStr),
            (17, "ipFamilyPolicy", Ty::Str),
            (22, "internalTrafficPolicy", Ty::Str),
        ]),
    ),
    (3, "status", Ty::Msg(&[(1, "loadBalancer", Ty::Msg(&[]))])),
];

const POLICY_RULE: &[Field] = &[
    (1, "verbs", Ty::RepeatedStr),
    (2, "apiGroups", Ty::RepeatedStr),
    (3, "resources", Ty::RepeatedStr),
    (4, "resourceNames", Ty::RepeatedStr),
    (5, "nonResourceURLs", Ty::RepeatedStr),
];

const ROLE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "rules", Ty::RepeatedMsg(POLICY_RULE)),
];

const CLUSTER_ROLE: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "rules", Ty::RepeatedMsg(POLICY_RULE)),
    (
        3,
        "aggregationRule",
        Ty::Msg(&[(1, "clusterRoleSelectors", Ty::RepeatedMsg(LABEL_SELECTOR))]),
    ),
];

const BINDING: &[Field] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "subjects",
        Ty::RepeatedMsg(&[
            (1, "kind", Ty::Str),
            (2, "apiGroup", Ty::Str),
            (3, "name", Ty::Str),
            (4, "namespace", Ty::Str),
        ]),
    ),
    (
        3,
        "roleRef",
        Ty::Msg(&[
            (1, "apiGroup", Ty::Str),
            (2, "kind", Ty::Str),
            (3, "name", Ty::Str),
        ]),
    ),
];

/// The kinds decoded, by apiVersion and kind: the built-in kinds the sandbox serves that
/// clients send typed (kubectl's `create` generators).
const KINDS: &[(&str, &str, &[Field])] = &[
    ("v1", "Namespace", NAMESPACE),
    ("v1", "ConfigMap", CONFIG_MAP),
    ("v1", "Secret", SECRET),
    ("v1", "ServiceAccount", SERVICE_ACCOUNT),
    ("v1", "Service", SERVICE),
    ("apps/v1", "Deployment", DEPLOYMENT),
    ("rbac.authorization.k8s.io/v1", "Role", ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        BINDING,
    ),
];

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into the object's JSON; the error is a sentence for a
/// 415 answer.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the Kubernetes magic number")?;
    let unknown = message(rest, UNKNOWN, "runtime.Unknown")?;
    let api_version = unknown["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default();
    let kind = unknown["typeMeta"]["kind"].as_str().unwrap_or_default();
    if unknown["contentEncoding"]
        .as_str()
        .is_some_and(|e| !e.is_empty())
    {
        return Err("encoded (compressed) protobuf bodies are not supported".into());
    }
    let Some((_, _, fields)) = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    else {
        return Err(format!(
            "protobuf bodies of {api_version} {kind} are not supported by the sandbox; send JSON (kubectl: `-o json` / `kubectl apply -f`)"
        ));
    };
    let raw = unknown["raw"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let mut obj = message(&raw, fields, kind)?;
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("truncated protobuf varint")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("protobuf varint too long".into())
}

fn bytes<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], String> {
    let n = varint(buf)? as usize;
    if buf.len() < n {
        return Err("truncated protobuf field".into());
    }
    let (b, rest) = buf.split_at(n);
    *buf = rest;
    Ok(b)
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a protobuf string is not UTF-8".to_string())
}

/// A `map<string, V>` entry: key = 1, value = 2.
fn entry(b: &[u8], value_bytes: bool) -> Result<(String, Value), String> {
    let mut buf = b;
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        if tag & 7 != 2 {
            return Err("a protobuf map entry has an unexpected wire type".into());
        }
        let field = bytes(&mut buf)?;
        match tag >> 3 {
            1 => key = text(field)?,
            2 if value_bytes => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(field))
            }
            2 => value = json!(text(field)?),
            _ => return Err("a protobuf map entry has an unknown field".into()),
        }
    }
    Ok((key, value))
}

fn time(b: &[u8]) -> Result<Value, String> {
    let mut buf = b;
    let (mut seconds, mut nanos) = (0i64, 0i64);
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => seconds = varint(&mut buf)? as i64,
            (2, 0) => nanos = varint(&mut buf)? as i64,
            _ => return Err("a protobuf Time has an unknown field".into()),
        }
    }
    // Go writes an unset (zero) time too; JSON says null.
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(seconds) * 1_000_000_000 + i128::from(nanos),
    )
    .map_err(|e| e.to_string())?;
    Ok(json!(
        t.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| e.to_string())?
    ))
}

/// `intstr.IntOrString`: type 0 is the int, 1 the string.
fn int_or_string(b: &[u8]) -> Result<Value, String> {
    let mut buf = b;
    let (mut ty, mut int, mut text_val) = (0u64, 0i64, String::new());
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => ty = varint(&mut buf)?,
            (2, 0) => int = varint(&mut buf)? as i32 as i64,
            (3, 2) => text_val = text(bytes(&mut buf)?)?,
            _ => return Err("an IntOrString has an unknown field".into()),
        }
    }
    Ok(if ty == 1 { json!(text_val) } else { json!(int) })
}

/// A `map<string, Quantity>` entry: the quantity's `string` (field 1) is its JSON.
fn quantity_entry(b: &[u8]) -> Result<(String, Value), String> {
    let mut buf = b;
    let (mut key, mut value) = (String::new(), String::new());
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let field = bytes(&mut buf)?;
        match tag >> 3 {
            1 => key = text(field)?,
            2 => {
                let mut q = field;
                while !q.is_empty() {
                    let t = varint(&mut q)?;
                    let f = bytes(&mut q)?;
                    if t >> 3 == 1 {
                        value = text(f)?;
                    }
                }
            }
            _ => return Err("a quantity map entry has an unknown field".into()),
        }
    }
    Ok((key, json!(value)))
}

/// Decodes one message by its field table.
fn message(b: &[u8], fields: &[Field], name: &str) -> Result<Value, String> {
    let mut out = Map::new();
    let mut buf = b;
    while !buf.is_empty() {
        let tag = varint(&mut buf)?;
        let (number, wire) = ((tag >> 3) as u32, tag & 7);
        let Some((_, json_name, ty)) = fields.iter().find(|(n, _, _)| *n == number) else {
            // Go writes every non-pointer field, set or not: an unknown field holding its
            // zero value says nothing and is skipped; anything else is refused.
            let zero = match wire {
                0 => varint(&mut buf)? == 0,
                2 => bytes(&mut buf)?.is_empty(),
                _ => false,
            };
            if zero {
                continue;
            }
            return Err(format!(
                "field {number} of {name} is not supported in protobuf bodies by the sandbox; send JSON"
            ));
        };
        let key = (*json_name).to_string();
        match (ty, wire) {
            (Ty::Bool, 0) => {
                out.insert(key, json!(varint(&mut buf)? != 0));
            }
            (Ty::Int, 0) => {
                out.insert(key, json!(varint(&mut buf)? as i64));
            }
            (_, 2) => {
                let field = bytes(&mut buf)?;
                match ty {
                    // An empty string is how Go writes an unset one (JSON omits it).
                    Ty::Str if field.is_empty() => {}
                    Ty::Str => {
                        out.insert(key, json!(text(field)?));
                    }
                    Ty::Bytes => {
                        out.insert(
                            key,
                            json!(base64::engine::general_purpose::STANDARD.encode(field)),
                        );
                    }
                    Ty::Time => {
                        out.insert(key, time(field)?);
                    }
                    Ty::Msg(inner) => {
                        out.insert(key, message(field, inner, json_name)?);
                    }
                    Ty::RepeatedStr => {
                        let list = out.entry(key).or_insert_with(|| json!([]));
                        if let Value::Array(a) = list {
                            a.push(json!(text(field)?));
                        }
                    }
                    Ty::RepeatedMsg(inner) => {
                        let item = message(field, inner, json_name)?;
                        if let Value::Array(a) = out.entry(key).or_insert_with(|| json!([])) {
                            a.push(item);
                        }
                    }
                    Ty::IntOrString => {
                        out.insert(key, int_or_string(field)?);
                    }
                    Ty::MapStr | Ty::MapBytes | Ty::MapQuantity => {
                        let (k, v) = if matches!(ty, Ty::MapQuantity) {
                            quantity_entry(field)?
                        } else {
                            entry(field, matches!(ty, Ty::MapBytes))?
                        };
                        if let Value::Object(m) = out.entry(key).or_insert_with(|| json!({})) {
                            m.insert(k, v);
                        }
                    }
                    Ty::Bool | Ty::Int => {
                        return Err(format!(
                            "field {json_name} of {name} has the wrong wire type"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "field {json_name} of {name} has the wrong wire type"
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u32, wire: u64, out: &mut Vec<u8>) {
        varint_out(u64::from(n) << 3 | wire, out);
    }

    fn varint_out(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u32, b: &[u8], out: &mut Vec<u8>) {
        tag(n, 2, out);
        varint_out(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::new();
        field(1, api_version.as_bytes(), &mut tm);
        field(2, kind.as_bytes(), &mut tm);
        let mut unknown = Vec::new();
        field(1, &tm, &mut unknown);
        field(2, raw, &mut unknown);
        let mut out = MAGIC.to_vec();
        out.extend(unknown);
        out
    }

    #[test]
    fn decodes_a_config_map_as_kubectl_sends_it() {
        let mut meta = Vec::new();
        field(1, b"settings", &mut meta);
        field(3, b"shop", &mut meta);
        let mut label = Vec::new();
        field(1, b"app", &mut label);
        field(2, b"web", &mut label);
        field(11, &label, &mut meta);
        let mut cm = Vec::new();
        field(1, &meta, &mut cm);
        let mut data = Vec::new();
        field(1, b"region", &mut data);
        field(2, b"eu", &mut data);
        field(2, &data, &mut cm);
        tag(4, 0, &mut cm);
        cm.push(1);
        let obj = decode(&envelope("v1", "ConfigMap", &cm)).unwrap();
        assert_eq!(
            obj,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "settings", "namespace": "shop", "labels": { "app": "web" } },
                "data": { "region": "eu" },
                "immutable": true,
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_decode_instead_of_dropping_it() {
        let mut cm = Vec::new();
        field(9, b"x", &mut cm);
        let err = decode(&envelope("v1", "ConfigMap", &cm)).unwrap_err();
        assert!(err.contains("field 9"), "{err}");
        let err = decode(&envelope("batch/v1", "Job", &[])).unwrap_err();
        assert!(err.contains("send JSON"), "{err}");
        assert!(decode(b"{}").is_err());
    }
}
