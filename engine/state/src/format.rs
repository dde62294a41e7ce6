//! The on-disk state format, version 1 (documented in docs/state-format.md).
//!
//! ```json
//! {
//!   "checksum": "blake3:…",
//!   "flotilla_version": "0.1.0",
//!   "format_version": 1,
//!   "lineage": "…",
//!   "outputs": { "name": { "value": …, "sensitive": true } },
//!   "resources": { "builtin_data.a": { "provider": "provider.builtin", "attributes": {…} } },
//!   "serial": 3
//! }
//! ```
//!
//! The checksum is blake3 over the compact JSON of the document with `checksum` set to `""`
//! (keys sorted), so any edit or truncation is detected.

use std::collections::BTreeMap;

use crate::{OutputState, ResourceInstanceState, State, StateError};

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct Document {
    format_version: u64,
    flotilla_version: String,
    serial: u64,
    lineage: String,
    resources: BTreeMap<flotilla_config::addr::ResourceInstanceAddr, ResourceInstanceState>,
    outputs: BTreeMap<String, OutputState>,
    checksum: String,
}

fn checksum_of(doc: &serde_json::Value) -> String {
    let mut doc = doc.clone();
    doc["checksum"] = serde_json::Value::String(String::new());
    let bytes = serde_json::to_vec(&doc).expect("JSON values always serialize");
    format!("blake3:{}", blake3::hash(&bytes).to_hex())
}

/// Serializes state to the versioned, checksummed document.
pub fn encode(state: &State) -> Vec<u8> {
    let doc = Document {
        format_version: FORMAT_VERSION,
        flotilla_version: env!("CARGO_PKG_VERSION").to_string(),
        serial: state.serial,
        lineage: state.lineage.clone(),
        resources: state.resources.clone(),
        outputs: state.outputs.clone(),
        checksum: String::new(),
    };
    let mut value = serde_json::to_value(&doc).expect("state always serializes");
    value["checksum"] = serde_json::Value::String(checksum_of(&value));
    let mut out = serde_json::to_vec_pretty(&value).expect("JSON values always serialize");
    out.push(b'\n');
    out
}

/// Parses and verifies a state document; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no format_version".into()))?;
    if version > FORMAT_VERSION {
        return Err(StateError::TooNew {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let recorded = value
        .get("checksum")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if recorded != checksum_of(&value) {
        return Err(corrupt(
            "its checksum does not match its content (edited or truncated)".into(),
        ));
    }
    let doc: Document = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    Ok(State {
        serial: doc.serial,
        lineage: doc.lineage,
        resources: doc.resources,
        outputs: doc.outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut s = State::new();
        s.serial = 7;
        s.resources.insert(
            "builtin_data.a[\"x\"]".parse().unwrap(),
            ResourceInstanceState {
                provider: "provider.builtin".parse().unwrap(),
                attributes: serde_json::json!({"input": 1.5, "id": "i"}),
                sensitive: serde_json::Value::Bool(false),
                dependencies: vec!["builtin_data.b".into()],
                create_before_destroy: false,
                tainted: false,
            },
        );
        s
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(decode(&encode(&s), "t").unwrap(), s);
    }

    #[test]
    fn detects_edits_and_truncation() {
        let bytes = encode(&sample());
        let text = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("1.5", "2.5");
        assert!(matches!(
            decode(text.as_bytes(), "t"),
            Err(StateError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() / 2], "t"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn refuses_newer_versions() {
        let text = String::from_utf8(encode(&sample()))
            .unwrap()
            .replace("\"format_version\": 1", "\"format_version\": 99");
        assert!(matches!(
            decode(text.as_bytes(), "t"),
            Err(StateError::TooNew { found: 99, .. })
        ));
    }
}

#[cfg(test)]
mod fixtures {
    use super::*;

    /// Every format version ever written must stay readable.
    #[test]
    fn reads_committed_v1_fixture() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/state/v1.json");
        let state = decode(&std::fs::read(path).unwrap(), path).unwrap();
        let addrs: Vec<String> = state.resources.keys().map(|a| a.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "builtin_data.app[0]",
                "builtin_data.app[1]",
                "builtin_data.base",
                "module.net[\"eu\"].builtin_data.conf"
            ]
        );
        let base = &state.resources[&"builtin_data.base".parse().unwrap()];
        assert_eq!(
            base.sensitive,
            serde_json::json!({"input": {"token": true}, "output": {"token": true}})
        );
        assert!(state.outputs["token"].sensitive);
        assert_eq!(state.outputs["first"].value, serde_json::json!(2));
        assert_eq!(
            decode(&encode(&state), "re-encoded").unwrap(),
            state,
            "re-encoding keeps everything"
        );
    }
}
