//! Name, label and key rules (DNS-1123 and friends), with the API server's messages.

use crate::status::Cause;
use serde_json::{Value, json};

const DNS1123_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Which rule an object's name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
}

fn is_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The API server's subdomain rule: at most 253 characters in all, dot-separated parts of
/// the label characters; unlike a label, a part may be longer than 63 characters.
fn is_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Checks an object name; returns the causes for `metadata.name`.
pub fn check_name(rule: NameRule, name: &str, field: &str) -> Vec<Cause> {
    let value = json!(name);
    let (ok, max, message) = match rule {
        NameRule::Subdomain => (is_subdomain(name), 253, DNS1123_SUBDOMAIN),
        NameRule::Label => (is_label(name), 63, DNS1123_LABEL),
        NameRule::Dns1035 => (
            is_label(name) && name.as_bytes()[0].is_ascii_lowercase(),
            63,
            DNS1035_LABEL,
        ),
    };
    let mut causes = Vec::new();
    if name.len() > max {
        causes.push(Cause::invalid(
            field,
            &value,
            format!("must be no more than {max} characters"),
        ));
    } else if !ok {
        causes.push(Cause::invalid(field, &value, message));
    }
    causes
}

/// Label values: empty, or up to 63 characters of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric())
}

/// Qualified names (label and annotation keys): optional DNS subdomain prefix, then a name part.
fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Labels and annotations under `metadata`.
pub fn check_metadata_maps(metadata: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = metadata.get("labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if !is_qualified_name(key) {
                causes.push(Cause::invalid(
                    "metadata.labels",
                    &json!(key),
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                ));
            }
            match value.as_str() {
                Some(v) if is_label_value(v) => {}
                _ => causes.push(Cause::invalid(
                    format!("metadata.labels.{key}"),
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                )),
            }
        }
    }
    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        for (key, value) in annotations {
            if !is_qualified_name(key) {
                causes.push(Cause::invalid("metadata.annotations", &json!(key), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
            }
            if !value.is_string() {
                causes.push(Cause::invalid(
                    format!("metadata.annotations.{key}"),
                    value,
                    "must be a string",
                ));
            }
        }
    }
    causes
}

/// Keys of ConfigMap and Secret data: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Five random lowercase alphanumerics, as `generateName` appends.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_rules() {
        assert!(check_name(NameRule::Subdomain, "web.example-1", "metadata.name").is_empty());
        assert!(!check_name(NameRule::Subdomain, "Web", "metadata.name").is_empty());
        assert!(!check_name(NameRule::Label, "a.b", "metadata.name").is_empty());
        assert!(!check_name(NameRule::Dns1035, "1abc", "metadata.name").is_empty());
        // A subdomain's parts are not labels: only the whole is bounded.
        let part = format!("secret-{}", "a".repeat(70));
        assert!(check_name(NameRule::Subdomain, &part, "metadata.name").is_empty());
        assert!(!check_name(NameRule::Subdomain, "a..b", "metadata.name").is_empty());
        let causes = check_name(NameRule::Subdomain, &"a".repeat(254), "metadata.name");
        assert!(causes[0].message.contains("no more than 253"));
        let long = "a".repeat(64);
        let causes = check_name(NameRule::Label, &long, "metadata.name");
        assert!(causes[0].message.contains("no more than 63"));
    }

    #[test]
    fn label_rules() {
        assert!(
            check_metadata_maps(&json!({"labels": {"app.kubernetes.io/name": "web", "tier": ""}}))
                .is_empty()
        );
        assert_eq!(
            check_metadata_maps(&json!({"labels": {"app": "-bad"}})).len(),
            1
        );
        assert_eq!(
            check_metadata_maps(&json!({"labels": {"bad key": "x"}})).len(),
            1
        );
        assert!(is_config_key("app.properties") && !is_config_key("a/b"));
        assert_eq!(random_suffix().len(), 5);
    }
}
