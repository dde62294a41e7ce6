//! Terraform's module registry protocol, so existing private registries can host flotilla
//! modules.
//!
//! Service discovery at `https://HOST/.well-known/terraform.json` (`modules.v1`, relative or
//! absolute), then `GET BASE/NAMESPACE/NAME/SYSTEM/versions` and
//! `GET BASE/NAMESPACE/NAME/SYSTEM/VERSION/download`, which answers `204` with an
//! `X-Terraform-Get` header (Terraform) or `200` with a JSON `location` (OpenTofu). The
//! location is a `git::` or `oci://` source, or an `http(s)` URL of a `.tar.gz` package,
//! relative locations resolving against the download URL. A token for a host comes from
//! `FLOTILLA_REGISTRY_TOKEN_<HOST>` (dots and dashes as `_`), as Terraform's `TF_TOKEN_*`.

use flotilla_config::RegistrySource;

use crate::version::{Constraint, Version};

/// A registry host's modules service.
pub struct ModuleRegistry {
    http: reqwest::Client,
    base: String,
    host: String,
    token: Option<String>,
}

impl ModuleRegistry {
    /// Discovers the modules service of `host`.
    pub async fn discover(host: &str) -> Result<ModuleRegistry, String> {
        let http = crate::http::client()?;
        let root = crate::http::base_url(host);
        let token_var = format!(
            "FLOTILLA_REGISTRY_TOKEN_{}",
            host.replace(['.', '-', ':'], "_")
        );
        let token = std::env::var(token_var).ok().filter(|t| !t.is_empty());
        let mut reg = ModuleRegistry {
            http,
            base: String::new(),
            host: host.to_string(),
            token,
        };
        let url = format!("{root}/.well-known/terraform.json");
        let doc = reg.json(&url).await?;
        let Some(modules) = doc.get("modules.v1").and_then(|v| v.as_str()) else {
            return Err(format!(
                "{host} is not a module registry: {url} has no `modules.v1` service"
            ));
        };
        reg.base = join(&url, modules);
        if !reg.base.ends_with('/') {
            reg.base.push('/');
        }
        Ok(reg)
    }

    fn module_url(&self, m: &RegistrySource) -> String {
        format!("{}{}/{}/{}", self.base, m.namespace, m.name, m.system)
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req.send().await.map_err(|e| {
            format!(
                "cannot reach the module registry {}: {}",
                self.host,
                chain(&e)
            )
        })
    }

    async fn json(&self, url: &str) -> Result<serde_json::Value, String> {
        let resp = self.get(url).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    }

    /// The module's versions, oldest first.
    pub async fn versions(&self, m: &RegistrySource) -> Result<Vec<Version>, String> {
        let url = format!("{}/versions", self.module_url(m));
        let doc = self.json(&url).await?;
        let mut versions: Vec<Version> = doc
            .pointer("/modules/0/versions")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.get("version")?.as_str())
                    .filter_map(Version::parse)
                    .collect()
            })
            .unwrap_or_default();
        versions.sort();
        Ok(versions)
    }

    /// The newest version matching `constraint` (any release without one).
    pub async fn choose(
        &self,
        m: &RegistrySource,
        constraint: Option<&Constraint>,
    ) -> Result<Version, String> {
        let versions = self.versions(m).await?;
        let any = Constraint::parse(">= 0").expect("a valid constraint");
        let c = constraint.unwrap_or(&any);
        c.newest(&versions).cloned().ok_or_else(|| {
            format!(
                "no version of {}/{}/{}/{} matches `{c}` (versions: {})",
                self.host,
                m.namespace,
                m.name,
                m.system,
                if versions.is_empty() {
                    "none".to_string()
                } else {
                    versions
                        .iter()
                        .map(Version::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        })
    }

    /// Where the package of `version` is (a source address or an archive URL).
    pub async fn location(&self, m: &RegistrySource, version: &Version) -> Result<String, String> {
        let url = format!("{}/{version}/download", self.module_url(m));
        let resp = self.get(&url).await?;
        let status = resp.status();
        if let Some(h) = resp.headers().get("x-terraform-get") {
            let h = h
                .to_str()
                .map_err(|_| format!("{url}: X-Terraform-Get is not text"))?;
            return Ok(resolve_location(&url, h));
        }
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        let doc: serde_json::Value =
            serde_json::from_slice(&body).map_err(|_| format!("{url} gave no location"))?;
        doc.get("location")
            .and_then(|l| l.as_str())
            .map(|l| resolve_location(&url, l))
            .ok_or_else(|| format!("{url} gave neither an X-Terraform-Get header nor a `location`"))
    }

    /// Downloads an archive URL.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        let resp = self.get(url).await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("cannot download {url}: {e}"))
    }
}

/// An error and its causes, as one line (reqwest's own message omits the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(&format!(": {c}"));
        cur = c.source();
    }
    out
}

/// A location as given, unless it is a URL path relative to `base`.
fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("::") || location.contains("://") {
        location.to_string()
    } else {
        join(base, location)
    }
}

/// Resolves `rel` against the URL `base` (absolute paths against its origin).
fn join(base: &str, rel: &str) -> String {
    if rel.contains("://") {
        return rel.to_string();
    }
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    if rel.starts_with('/') {
        return format!("{}{rel}", &base[..origin_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|&i| i >= origin_end)
        .unwrap_or(origin_end);
    let mut out = format!("{}/", &base[..dir_end]);
    for part in rel.split('/') {
        match part {
            "." => {}
            ".." => {
                let trimmed = out.trim_end_matches('/');
                if let Some(i) = trimmed.rfind('/').filter(|&i| i >= origin_end) {
                    out.truncate(i + 1);
                }
            }
            p => {
                out.push_str(p);
                out.push('/');
            }
        }
    }
    if !rel.ends_with('/') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_urls() {
        let dl = "http://127.0.0.1:9/v1/modules/acme/edge/kube/1.0.0/download";
        assert_eq!(
            resolve_location(dl, "git::file:///r.git?ref=v1"),
            "git::file:///r.git?ref=v1"
        );
        assert_eq!(
            resolve_location(dl, "/archives/edge.tar.gz"),
            "http://127.0.0.1:9/archives/edge.tar.gz"
        );
        assert_eq!(
            resolve_location(dl, "../../x.tar.gz"),
            "http://127.0.0.1:9/v1/modules/acme/edge/x.tar.gz"
        );
        assert_eq!(
            join("http://h/.well-known/terraform.json", "/v1/modules/"),
            "http://h/v1/modules/"
        );
    }
}
