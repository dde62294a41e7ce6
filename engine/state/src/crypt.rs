//! Client-side encryption of state, apply journals and plan files.
//!
//! A [`Codec`] turns state into the bytes a store keeps and back. Plain, it is the state
//! format itself. With [`Encryption`] every document a store writes is AES-256-GCM
//! ciphertext: a snapshot becomes an envelope that keeps only its lineage and serial in the
//! clear (so compare-and-swap works without the key), each journal line is sealed on its
//! own, and a plan file is one sealed envelope. Keys come from a passphrase through
//! PBKDF2-HMAC-SHA512 (a random salt per writer, stored beside the ciphertext) or are given
//! raw (32 bytes). The first key writes; the others (the `fallback`) only read, which is
//! how keys are rotated. A wrong key fails the GCM tag check and is reported, never guessed
//! past; nothing is written on that path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use crate::{State, StateError, format};

/// PBKDF2 rounds when the configuration does not say (OpenTofu's default too).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The fewest rounds accepted.
pub const MIN_ITERATIONS: u32 = 100_000;

const SEALED_VERSION: u8 = 1;
const PBKDF2: u8 = 0;
const RAW: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
/// How an encrypted document starts (written compact, this key first).
const ENVELOPE_PREFIX: &[u8] = b"{\"encryption\":";
const ENVELOPE_VERSION: &str = "flotilla/v1";

/// Where a key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// Derived from a passphrase with PBKDF2-HMAC-SHA512.
    Passphrase {
        /// The passphrase.
        passphrase: String,
        /// PBKDF2 rounds.
        iterations: u32,
    },
    /// A 256-bit key as is.
    Raw([u8; 32]),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Passphrase { iterations, .. } => {
                write!(f, "Passphrase {{ iterations: {iterations}, .. }}")
            }
            KeySource::Raw(_) => f.write_str("Raw(..)"),
        }
    }
}

/// One configured key, named for messages (`key_provider "pbkdf2"`).
#[derive(Debug, Clone)]
pub struct Key {
    /// How the configuration names it.
    pub name: String,
    /// Its material.
    pub source: KeySource,
}

/// An AES-256 key.
type DerivedKey = [u8; 32];

/// The keys state is encrypted with.
pub struct Encryption {
    /// The key that writes, then the fallback keys that only read.
    keys: Vec<Key>,
    /// Whether unencrypted state may be read (to encrypt existing state).
    read_unencrypted: bool,
    /// This process's salt for passphrase keys.
    salt: [u8; SALT_LEN],
    /// Derived keys by (key index, salt): PBKDF2 runs once per salt.
    derived: Mutex<HashMap<(usize, Vec<u8>), DerivedKey>>,
    /// Whether unencrypted data was read (the caller writes it back encrypted).
    read_plain: AtomicBool,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("keys", &self.keys)
            .field("read_unencrypted", &self.read_unencrypted)
            .finish_non_exhaustive()
    }
}

impl Encryption {
    /// Encryption with `primary` for writing and `fallback` keys for reading older state;
    /// `read_unencrypted` lets existing plain state be read (and written back encrypted).
    pub fn new(primary: Key, fallback: Vec<Key>, read_unencrypted: bool) -> Encryption {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let mut keys = vec![primary];
        keys.extend(fallback);
        Encryption {
            keys,
            read_unencrypted,
            salt,
            derived: Mutex::new(HashMap::new()),
            read_plain: AtomicBool::new(false),
        }
    }

    fn key(&self, index: usize, salt: &[u8]) -> [u8; 32] {
        let mut cache = self.derived.lock().unwrap_or_else(|e| e.into_inner());
        *cache
            .entry((index, salt.to_vec()))
            .or_insert_with(|| match &self.keys[index].source {
                KeySource::Raw(k) => *k,
                KeySource::Passphrase {
                    passphrase,
                    iterations,
                } => {
                    let mut out = [0u8; 32];
                    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
                        passphrase.as_bytes(),
                        salt,
                        *iterations,
                        &mut out,
                    );
                    out
                }
            })
    }

    /// `[version][kind][salt length][salt][nonce][ciphertext + tag]`, under the first key.
    fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let (kind, salt): (u8, &[u8]) = match self.keys[0].source {
            KeySource::Passphrase { .. } => (PBKDF2, &self.salt),
            KeySource::Raw(_) => (RAW, &[]),
        };
        let cipher = Aes256Gcm::new(&self.key(0, salt).into());
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = Vec::with_capacity(3 + salt.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(&[SEALED_VERSION, kind, salt.len() as u8]);
        out.extend_from_slice(salt);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Encryption::seal`] made with any configured key of the same kind.
    fn open(&self, sealed: &[u8], aad: &[u8], path: &str) -> Result<Vec<u8>, StateError> {
        let corrupt = |reason: &str| StateError::Corrupt {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let [version, kind, salt_len, rest @ ..] = sealed else {
            return Err(corrupt("the encrypted data is truncated"));
        };
        if *version != SEALED_VERSION {
            return Err(corrupt("the encrypted data has an unknown version"));
        }
        let salt_len = *salt_len as usize;
        if rest.len() < salt_len + NONCE_LEN + 16 {
            return Err(corrupt("the encrypted data is truncated"));
        }
        let (salt, rest) = rest.split_at(salt_len);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        for (i, key) in self.keys.iter().enumerate() {
            let matches = matches!(
                (&key.source, *kind),
                (KeySource::Passphrase { .. }, PBKDF2) | (KeySource::Raw(_), RAW)
            );
            if !matches {
                continue;
            }
            let cipher = Aes256Gcm::new(&self.key(i, salt).into());
            if let Ok(plain) = cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
            {
                return Ok(plain);
            }
        }
        let tried: Vec<&str> = self.keys.iter().map(|k| k.name.as_str()).collect();
        Err(StateError::Decrypt {
            path: path.to_string(),
            tried: tried.join(", "),
        })
    }
}

/// Whether `bytes` are an encrypted document (state or plan) rather than a plain one.
pub fn is_sealed_document(bytes: &[u8]) -> bool {
    bytes.starts_with(ENVELOPE_PREFIX)
}

/// How a store turns state into bytes and back: plain, or encrypted.
#[derive(Debug, Clone, Default)]
pub struct Codec(Option<Arc<Encryption>>);

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    encryption: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lineage: Option<String>,
    data: String,
}

fn state_aad(lineage: &str, serial: u64) -> Vec<u8> {
    format!("flotilla-state\n{lineage}\n{serial}").into_bytes()
}

const JOURNAL_AAD: &[u8] = b"flotilla-journal";

impl Codec {
    /// No encryption: the state format as is.
    pub fn plain() -> Codec {
        Codec(None)
    }

    /// Everything written is encrypted.
    pub fn encrypted(encryption: Encryption) -> Codec {
        Codec(Some(Arc::new(encryption)))
    }

    /// Whether this codec encrypts.
    pub fn is_encrypted(&self) -> bool {
        self.0.is_some()
    }

    /// Whether it has read unencrypted data (allowed by `fallback { unencrypted = true }`),
    /// which should now be written back encrypted.
    pub fn read_unencrypted_data(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|e| e.read_plain.load(Ordering::SeqCst))
    }

    /// A state snapshot as stored.
    pub fn encode_state(&self, state: &State) -> Vec<u8> {
        let plain = format::encode(state);
        let Some(enc) = &self.0 else { return plain };
        let sealed = enc.seal(&plain, &state_aad(&state.lineage, state.serial));
        envelope(Envelope {
            encryption: ENVELOPE_VERSION.into(),
            serial: Some(state.serial),
            lineage: Some(state.lineage.clone()),
            data: b64(&sealed),
        })
    }

    /// A stored snapshot as state; `path` names it in errors.
    pub fn decode_state(&self, bytes: &[u8], path: &str) -> Result<State, StateError> {
        let plain = self.open_document(bytes, path, |e| {
            state_aad(
                e.lineage.as_deref().unwrap_or_default(),
                e.serial.unwrap_or_default(),
            )
        })?;
        format::decode(&plain, path)
    }

    /// A plan file (or any other document) as stored.
    pub fn seal_document(&self, plain: Vec<u8>, what: &str) -> Vec<u8> {
        let Some(enc) = &self.0 else { return plain };
        let sealed = enc.seal(&plain, what.as_bytes());
        envelope(Envelope {
            encryption: ENVELOPE_VERSION.into(),
            serial: None,
            lineage: None,
            data: b64(&sealed),
        })
    }

    /// What [`Codec::seal_document`] wrote for `what`.
    pub fn open_document_as(
        &self,
        bytes: &[u8],
        what: &str,
        path: &str,
    ) -> Result<Vec<u8>, StateError> {
        self.open_document(bytes, path, |_| what.as_bytes().to_vec())
    }

    fn open_document(
        &self,
        bytes: &[u8],
        path: &str,
        aad: impl FnOnce(&Envelope) -> Vec<u8>,
    ) -> Result<Vec<u8>, StateError> {
        match (&self.0, is_sealed_document(bytes)) {
            (None, false) => Ok(bytes.to_vec()),
            (None, true) => Err(StateError::Encrypted {
                path: path.to_string(),
            }),
            (Some(enc), false) if enc.read_unencrypted => {
                enc.read_plain.store(true, Ordering::SeqCst);
                Ok(bytes.to_vec())
            }
            (Some(_), false) => Err(StateError::NotEncrypted {
                path: path.to_string(),
            }),
            (Some(enc), true) => {
                let corrupt = |reason: String| StateError::Corrupt {
                    path: path.to_string(),
                    reason,
                };
                let e: Envelope = serde_json::from_slice(bytes)
                    .map_err(|e| corrupt(format!("not a valid encrypted document ({e})")))?;
                if e.encryption != ENVELOPE_VERSION {
                    return Err(corrupt(format!(
                        "unknown encryption format `{}`",
                        e.encryption
                    )));
                }
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&e.data)
                    .map_err(|e| corrupt(format!("the encrypted data is not base64 ({e})")))?;
                enc.open(&data, &aad(&e), path)
            }
        }
    }

    /// One journal entry's JSON as written on its line (no tab or newline in it).
    pub fn seal_line(&self, json: &[u8]) -> Vec<u8> {
        match &self.0 {
            None => json.to_vec(),
            Some(enc) => b64(&enc.seal(json, JOURNAL_AAD)).into_bytes(),
        }
    }

    /// A journal line's JSON; `path` names the journal in errors.
    pub fn open_line(&self, line: &[u8], path: &str) -> Result<Vec<u8>, StateError> {
        let sealed = !line.starts_with(b"{");
        match (&self.0, sealed) {
            (None, false) => Ok(line.to_vec()),
            (None, true) => Err(StateError::Encrypted {
                path: path.to_string(),
            }),
            (Some(enc), false) if enc.read_unencrypted => {
                enc.read_plain.store(true, Ordering::SeqCst);
                Ok(line.to_vec())
            }
            (Some(_), false) => Err(StateError::NotEncrypted {
                path: path.to_string(),
            }),
            (Some(enc), true) => {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(line)
                    .map_err(|e| StateError::Corrupt {
                        path: path.to_string(),
                        reason: format!("a journal line is not base64 ({e})"),
                    })?;
                enc.open(&data, JOURNAL_AAD, path)
            }
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn envelope(e: Envelope) -> Vec<u8> {
    let mut out = serde_json::to_vec(&e).expect("an envelope always serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(p: &str) -> Key {
        Key {
            name: format!("passphrase {p}"),
            source: KeySource::Passphrase {
                passphrase: p.into(),
                iterations: MIN_ITERATIONS,
            },
        }
    }

    fn secret_state() -> State {
        let mut s = State::new();
        s.outputs.insert(
            "token".into(),
            crate::OutputState {
                value: serde_json::json!("hunter2-very-secret"),
                sensitive: true,
            },
        );
        s.serial = 4;
        s
    }

    #[test]
    fn a_state_round_trips_and_hides_its_values() {
        let codec = Codec::encrypted(Encryption::new(pass("one"), vec![], false));
        let s = secret_state();
        let bytes = codec.encode_state(&s);
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(format::peek_version(&bytes), Some((s.lineage.clone(), 4)));
        assert_eq!(codec.decode_state(&bytes, "s").unwrap(), s);
    }

    #[test]
    fn a_wrong_key_is_refused_and_a_fallback_key_reads() {
        let old = Codec::encrypted(Encryption::new(pass("old"), vec![], false));
        let bytes = old.encode_state(&secret_state());
        let wrong = Codec::encrypted(Encryption::new(pass("new"), vec![], false));
        let err = wrong.decode_state(&bytes, "s.json").unwrap_err();
        assert!(matches!(err, StateError::Decrypt { .. }), "{err}");
        let rotated = Codec::encrypted(Encryption::new(pass("new"), vec![pass("old")], false));
        let state = rotated.decode_state(&bytes, "s.json").unwrap();
        // Written again, it is under the new key only.
        let again = rotated.encode_state(&state);
        wrong.decode_state(&again, "s.json").unwrap();
        assert!(old.decode_state(&again, "s.json").is_err());
    }

    #[test]
    fn the_header_cannot_be_moved_to_another_serial() {
        let codec = Codec::encrypted(Encryption::new(pass("k"), vec![], false));
        let bytes = codec.encode_state(&secret_state());
        let text = String::from_utf8(bytes).unwrap();
        let forged = text.replace("\"serial\":4", "\"serial\":9");
        assert!(codec.decode_state(forged.as_bytes(), "s").is_err());
    }

    #[test]
    fn plain_and_encrypted_state_are_not_mistaken_for_each_other() {
        let enc = Codec::encrypted(Encryption::new(pass("k"), vec![], false));
        let plain = Codec::plain();
        let s = secret_state();
        let sealed = enc.encode_state(&s);
        assert!(matches!(
            plain.decode_state(&sealed, "s"),
            Err(StateError::Encrypted { .. })
        ));
        let clear = plain.encode_state(&s);
        assert!(matches!(
            enc.decode_state(&clear, "s"),
            Err(StateError::NotEncrypted { .. })
        ));
        let migrating = Codec::encrypted(Encryption::new(pass("k"), vec![], true));
        assert_eq!(migrating.decode_state(&clear, "s").unwrap(), s);
    }

    #[test]
    fn raw_keys_and_journal_lines() {
        let codec = Codec::encrypted(Encryption::new(
            Key {
                name: "env".into(),
                source: KeySource::Raw([7; 32]),
            },
            vec![],
            false,
        ));
        let line = codec.seal_line(br#"{"op":"remove","addr":"a.b"}"#);
        assert!(!line.contains(&b'\t') && !line.contains(&b'\n'));
        assert_eq!(
            codec.open_line(&line, "j").unwrap(),
            br#"{"op":"remove","addr":"a.b"}"#
        );
        let doc = codec.seal_document(b"plan bytes".to_vec(), "flotilla-plan");
        assert_eq!(
            codec.open_document_as(&doc, "flotilla-plan", "p").unwrap(),
            b"plan bytes"
        );
        assert!(codec.open_document_as(&doc, "other", "p").is_err());
    }
}
