//! OCI sources: modules stored as artifacts in any container registry (distribution,
//! Harbor, cloud registries), through the `oci-client` crate.
//!
//! A module artifact is one manifest with an empty JSON config of media type
//! [`CONFIG_MEDIA_TYPE`] and one layer of media type [`LAYER_MEDIA_TYPE`] (the package as a
//! deterministic `.tar.gz`, see [`crate::archive`]). The manifest carries the package's
//! blake3 tree hash in the [`TREE_HASH_ANNOTATION`] annotation, which installation checks
//! after unpacking. Tags are versions; `version` constraints match them as OpenTofu does.
//!
//! Credentials come from the docker configuration (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`: `auth` as user:password, or `identitytoken`/`registrytoken` as
//! a bearer token), else the registry is used anonymously. Loopback registries are spoken
//! to over plain HTTP, every other one over HTTPS.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::version::{Constraint, Version};

/// The config blob's media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.flotilla.module.config.v1+json";
/// The package layer's media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.flotilla.module.layer.v1.tar+gzip";
/// The manifest annotation holding the package's tree hash.
pub const TREE_HASH_ANNOTATION: &str = "dev.flotilla.module.tree-hash";

/// A client for one registry host.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    host: String,
}

/// A pulled module package.
pub struct Pulled {
    /// The package archive.
    pub archive: Vec<u8>,
    /// The manifest digest.
    pub digest: String,
    /// The tree hash the manifest claims.
    pub tree_hash: Option<String>,
}

/// Whether `host` (with an optional port) is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Registry {
    /// A client for `host`, with credentials from the docker configuration.
    pub fn new(host: &str) -> Registry {
        crate::http::install_crypto();
        let config = ClientConfig {
            protocol: if is_loopback(host) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        Registry {
            client: Client::new(config),
            auth: docker_credentials(host).unwrap_or(RegistryAuth::Anonymous),
            host: host.to_string(),
        }
    }

    fn reference(&self, repository: &str, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), repository.to_string(), tag.to_string())
    }

    /// The repository's tags.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, String> {
        let r = self.reference(repository, "latest");
        let mut tags = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self
                .client
                .list_tags(&r, &self.auth, Some(1000), last.as_deref())
                .await
                .map_err(|e| self.error("list the tags of", repository, e))?;
            let n = page.tags.len();
            last = page.tags.last().cloned();
            tags.extend(page.tags);
            if n < 1000 {
                break;
            }
        }
        Ok(tags)
    }

    /// The newest version tag matching `constraint`, and every version tag.
    pub async fn newest(
        &self,
        repository: &str,
        constraint: &Constraint,
    ) -> Result<(Version, String), String> {
        let tags = self.tags(repository).await?;
        let mut versions: Vec<(Version, String)> = tags
            .into_iter()
            .filter_map(|t| Version::parse(&t).map(|v| (v, t)))
            .collect();
        versions.sort();
        match versions.iter().rev().find(|(v, _)| constraint.matches(v)) {
            Some(found) => Ok(found.clone()),
            None => Err(format!(
                "no version of oci://{}/{repository} matches `{constraint}` (versions: {})",
                self.host,
                if versions.is_empty() {
                    "none".to_string()
                } else {
                    versions
                        .iter()
                        .map(|(v, _)| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
        }
    }

    /// Pulls the module at `tag` or `digest` (`sha256:…`).
    pub async fn pull(&self, repository: &str, tag_or_digest: &str) -> Result<Pulled, String> {
        let r = if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(
                self.host.clone(),
                repository.to_string(),
                tag_or_digest.to_string(),
            )
        } else {
            self.reference(repository, tag_or_digest)
        };
        let image = self
            .client
            .pull(&r, &self.auth, vec![LAYER_MEDIA_TYPE])
            .await
            .map_err(|e| self.error("pull", &format!("{repository}:{tag_or_digest}"), e))?;
        let digest = image.digest.clone().ok_or_else(|| {
            format!("the registry returned no digest for {repository}:{tag_or_digest}")
        })?;
        let tree_hash = image
            .manifest
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(TREE_HASH_ANNOTATION).cloned());
        let mut layers = image
            .layers
            .into_iter()
            .filter(|l| l.media_type == LAYER_MEDIA_TYPE);
        let (Some(layer), None) = (layers.next(), layers.next()) else {
            return Err(format!(
                "{repository}:{tag_or_digest} is not a flotilla module (it needs exactly one {LAYER_MEDIA_TYPE} layer)"
            ));
        };
        Ok(Pulled {
            archive: layer.data.to_vec(),
            digest,
            tree_hash,
        })
    }

    /// Packs `dir` and pushes it as `repository:tag`; returns (manifest digest, tree hash).
    pub async fn publish(
        &self,
        dir: &Path,
        repository: &str,
        tag: &str,
    ) -> Result<(String, String), String> {
        let tree_hash =
            crate::cache::tree_hash(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let archive = crate::archive::pack(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let layers = vec![ImageLayer::new(archive, LAYER_MEDIA_TYPE.to_string(), None)];
        let config = Config::new(b"{}".to_vec(), CONFIG_MEDIA_TYPE.to_string(), None);
        let annotations = BTreeMap::from([
            (TREE_HASH_ANNOTATION.to_string(), tree_hash.clone()),
            (
                "org.opencontainers.image.version".to_string(),
                tag.to_string(),
            ),
        ]);
        let manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        let r = self.reference(repository, tag);
        self.client
            .push(&r, &layers, config, &self.auth, Some(manifest))
            .await
            .map_err(|e| self.error("push to", &format!("{repository}:{tag}"), e))?;
        let digest = self
            .client
            .fetch_manifest_digest(&r, &self.auth)
            .await
            .map_err(|e| self.error("read back", &format!("{repository}:{tag}"), e))?;
        Ok((digest, tree_hash))
    }

    fn error(&self, what: &str, name: &str, e: oci_client::errors::OciDistributionError) -> String {
        format!("cannot {what} oci://{}/{name}: {e}", self.host)
    }
}

/// Credentials for `host` from the docker configuration, if it has any.
fn docker_credentials(host: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => Path::new(&d).join("config.json"),
        None => Path::new(&std::env::var_os("HOME")?).join(".docker/config.json"),
    };
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, v)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (k == host).then_some(v)
    })?;
    for key in ["registrytoken", "identitytoken"] {
        if let Some(t) = entry
            .get(key)
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
        {
            return Some(RegistryAuth::Bearer(t.to_string()));
        }
    }
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(RegistryAuth::Basic(user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_use_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
