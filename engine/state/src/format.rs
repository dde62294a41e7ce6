//! The on-disk state format, version 2 (documented in docs/state-format.md).
//!
//! ```json
//! {
//!   "format_version": 2,
//!   "checksum": "blake3:…",
//!   "flotilla_version": "0.1.0",
//!   "serial": 3,
//!   "lineage": "…",
//!   "resources": { "builtin_data.a": { "provider": "provider.builtin", "attributes": {…} } },
//!   "outputs": { "name": { "value": …, "sensitive": true } }
//! }
//! ```
//!
//! The checksum is blake3 over the file's bytes with the 64 hex digits of the checksum itself
//! read as `0`s, so any edit or truncation is detected, and checking it costs one pass over
//! the bytes. Version 1 files (checksum over the re-serialized document) are still read.

use std::collections::BTreeMap;

use crate::{OutputState, ResourceInstanceState, State, StateError};

/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 2;

/// What precedes the checksum's hex digits in a version 2 file.
const CHECKSUM_KEY: &[u8] = b"\"checksum\": \"blake3:";
const HEX_LEN: usize = 64;

#[derive(serde::Serialize, serde::Deserialize)]
struct Document {
    format_version: u64,
    checksum: String,
    flotilla_version: String,
    serial: u64,
    lineage: String,
    resources: BTreeMap<flotilla_config::addr::ResourceInstanceAddr, ResourceInstanceState>,
    outputs: BTreeMap<String, OutputState>,
    #[serde(default)]
    rollouts: BTreeMap<String, crate::RolloutRecord>,
    #[serde(default)]
    deposed: BTreeMap<flotilla_config::addr::ResourceInstanceAddr, ResourceInstanceState>,
}

/// Borrowed for writing, so encoding never copies the state.
#[derive(serde::Serialize)]
struct DocumentRef<'a> {
    format_version: u64,
    checksum: &'a str,
    flotilla_version: &'a str,
    serial: u64,
    lineage: &'a str,
    resources: &'a BTreeMap<flotilla_config::addr::ResourceInstanceAddr, ResourceInstanceState>,
    outputs: &'a BTreeMap<String, OutputState>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    rollouts: &'a BTreeMap<String, crate::RolloutRecord>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    deposed: &'a BTreeMap<flotilla_config::addr::ResourceInstanceAddr, ResourceInstanceState>,
}

/// Serializes state to the versioned, checksummed document.
pub fn encode(state: &State) -> Vec<u8> {
    let placeholder = format!("blake3:{}", seal::placeholder());
    let doc = DocumentRef {
        format_version: FORMAT_VERSION,
        checksum: &placeholder,
        flotilla_version: env!("CARGO_PKG_VERSION"),
        serial: state.serial,
        lineage: &state.lineage,
        resources: &state.resources,
        outputs: &state.outputs,
        rollouts: &state.rollouts,
        deposed: &state.deposed,
    };
    let mut out = serde_json::to_vec_pretty(&doc).expect("state always serializes");
    out.push(b'\n');
    assert!(
        seal::write(&mut out, CHECKSUM_KEY),
        "the checksum is written second"
    );
    out
}

/// The lineage and serial of an encoded state from its first bytes (they come before the
/// resources), without decoding the rest: what a compare-and-swap needs.
pub fn peek_version(head: &[u8]) -> Option<(String, u64)> {
    let text = String::from_utf8_lossy(head);
    let field = |name: &str| {
        let key = format!("\"{name}\":");
        let at = text.find(&key)? + key.len();
        let rest = text[at..].trim_start();
        let end = rest.find([',', '\n', '}'])?;
        Some(rest[..end].trim().to_string())
    };
    let serial = field("serial")?.parse().ok()?;
    let lineage = field("lineage")?.trim_matches('"').to_string();
    Some((lineage, serial))
}

/// State for embedding in a document with its own checksum (a plan file), serialized where
/// it is written, without a JSON tree in between; [`from_json`] reads it back.
pub fn embedded(state: &State) -> impl serde::Serialize + '_ {
    DocumentRef {
        format_version: FORMAT_VERSION,
        checksum: "",
        flotilla_version: env!("CARGO_PKG_VERSION"),
        serial: state.serial,
        lineage: &state.lineage,
        resources: &state.resources,
        outputs: &state.outputs,
        rollouts: &state.rollouts,
        deposed: &state.deposed,
    }
}

/// Checksums over a document's own bytes: blake3 with the checksum's 64 hex digits (after
/// the first `key` in the document's first 256 bytes) read as `0`s. State files (version 2)
/// and plan files (version 2) are sealed so: checking costs one pass over the bytes.
pub mod seal {
    use super::HEX_LEN;

    fn range(bytes: &[u8], key: &[u8]) -> Option<std::ops::Range<usize>> {
        let head = &bytes[..bytes.len().min(256)];
        let at = head.windows(key.len()).position(|w| w == key)? + key.len();
        (at + HEX_LEN <= bytes.len()).then_some(at..at + HEX_LEN)
    }

    fn hash(bytes: &[u8], range: std::ops::Range<usize>) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        h.update(&bytes[..range.start]);
        h.update(&[b'0'; HEX_LEN][..range.len()]);
        h.update(&bytes[range.end..]);
        h.finalize()
    }

    /// The placeholder a sealed document is written with, after `key`.
    pub fn placeholder() -> String {
        "0".repeat(HEX_LEN)
    }

    /// Writes the checksum over the placeholder after `key`; `false` when there is none.
    pub fn write(bytes: &mut [u8], key: &[u8]) -> bool {
        let Some(r) = range(bytes, key) else {
            return false;
        };
        let h = hash(bytes, r.clone());
        bytes[r].copy_from_slice(h.to_hex().as_bytes());
        true
    }

    /// Whether the checksum after `key` matches the bytes; `None` when there is none.
    pub fn check(bytes: &[u8], key: &[u8]) -> Option<bool> {
        let r = range(bytes, key)?;
        Some(hash(bytes, r.clone()).to_hex().as_bytes() == &bytes[r])
    }
}

/// State as a JSON value, for embedding in a document with its own checksum (a plan file).
pub fn to_json(state: &State) -> serde_json::Value {
    serde_json::to_value(DocumentRef {
        format_version: FORMAT_VERSION,
        checksum: "",
        flotilla_version: env!("CARGO_PKG_VERSION"),
        serial: state.serial,
        lineage: &state.lineage,
        resources: &state.resources,
        outputs: &state.outputs,
        rollouts: &state.rollouts,
        deposed: &state.deposed,
    })
    .expect("state always serializes")
}

/// Reads state embedded with [`to_json`]; the embedding document's checksum covers it.
pub fn from_json(value: serde_json::Value) -> Result<State, String> {
    let doc: Document = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok(State {
        serial: doc.serial,
        lineage: doc.lineage,
        resources: doc.resources,
        outputs: doc.outputs,
        rollouts: doc.rollouts,
        deposed: doc.deposed,
    })
}

/// Parses and verifies a state document; `path` is only used in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_string(),
        reason,
    };
    #[derive(serde::Deserialize)]
    struct Head {
        format_version: Option<u64>,
    }
    let head: Head =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
    let version = head
        .format_version
        .ok_or_else(|| corrupt("no format_version".into()))?;
    if version > FORMAT_VERSION {
        return Err(StateError::TooNew {
            path: path.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version < 2 {
        return decode_v1(bytes, path);
    }
    let mismatch =
        || corrupt("its checksum does not match its content (edited or truncated)".into());
    if seal::check(bytes, CHECKSUM_KEY) != Some(true) {
        return Err(mismatch());
    }
    let doc: Document = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    Ok(State {
        serial: doc.serial,
        lineage: doc.lineage,
        resources: doc.resources,
        outputs: doc.outputs,
        rollouts: doc.rollouts,
        deposed: doc.deposed,
    })
}

/// Version 1: the checksum is blake3 over the compact JSON of the document with `checksum`
/// set to `""` (keys sorted).
fn decode_v1(bytes: &[u8], path: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
    let recorded = match value.get_mut("checksum") {
        Some(c) => std::mem::take(c),
        None => serde_json::Value::Null,
    };
    value["checksum"] = serde_json::Value::String(String::new());
    let compact = serde_json::to_vec(&value).expect("JSON values always serialize");
    let computed = format!("blake3:{}", blake3::hash(&compact).to_hex());
    if recorded.as_str() != Some(computed.as_str()) {
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
        rollouts: doc.rollouts,
        deposed: doc.deposed,
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
    fn detects_an_edited_checksum_and_ignores_attributes_named_checksum() {
        let mut s = sample();
        s.resources.values_mut().next().unwrap().attributes =
            serde_json::json!({"checksum": "blake3:0000"});
        let bytes = encode(&s);
        assert_eq!(decode(&bytes, "t").unwrap(), s);
        let at = bytes
            .windows(CHECKSUM_KEY.len())
            .position(|w| w == CHECKSUM_KEY)
            .unwrap()
            + CHECKSUM_KEY.len();
        let range = at..at + HEX_LEN;
        let mut edited = bytes.clone();
        edited[range.start] = if edited[range.start] == b'a' {
            b'b'
        } else {
            b'a'
        };
        assert!(matches!(
            decode(&edited, "t"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn refuses_newer_versions() {
        let text = String::from_utf8(encode(&sample()))
            .unwrap()
            .replace("\"format_version\": 2", "\"format_version\": 99");
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
        check_fixture(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/state/v1.json"
        ));
    }

    /// The same state, written by format version 2.
    #[test]
    fn reads_committed_v2_fixture() {
        check_fixture(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/state/v2.json"
        ));
    }

    fn check_fixture(path: &str) {
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
