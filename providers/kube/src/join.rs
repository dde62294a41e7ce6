//! Credentials one cluster hands another ([`Credentials`]): a kubeconfig attribute becomes the
//! server URL and a Secret reference in the object, and a Secret holding the kubeconfig's
//! bearer token and CA, as `karmadactl join` writes for a Push member.

use flotilla_provider::{ProviderError, Value};
use serde_json::{Value as Json, json};

use crate::kinds::{Credentials, Kind};

/// What the Secret and the object get from a kubeconfig.
#[derive(Debug, PartialEq, Eq)]
pub struct Access {
    /// The API server's URL.
    pub server: String,
    /// The bearer token.
    pub token: String,
    /// The CA bundle, base64-encoded as the kubeconfig holds it (may be empty).
    pub ca: String,
}

/// Reads the current context's server, token and CA from a kubeconfig document.
pub fn access(kubeconfig: &str) -> Result<Access, ProviderError> {
    let kc: Json = serde_yaml::from_str(kubeconfig).map_err(|e| {
        ProviderError::new("the member's kubeconfig is not a kubeconfig").with_detail(e.to_string())
    })?;
    let named = |list: &str, name: &str| -> Json {
        kc[list]
            .as_array()
            .and_then(|l| l.iter().find(|e| e["name"] == name))
            .cloned()
            .unwrap_or(Json::Null)
    };
    let current = kc["current-context"].as_str().unwrap_or_default();
    let context = &named("contexts", current)["context"];
    if context.is_null() {
        return Err(ProviderError::new(format!(
            "the member's kubeconfig has no context {current:?} (its current-context)"
        )));
    }
    let cluster = &named("clusters", context["cluster"].as_str().unwrap_or_default())["cluster"];
    let user = &named("users", context["user"].as_str().unwrap_or_default())["user"];
    let server = cluster["server"].as_str().unwrap_or_default().to_string();
    if server.is_empty() {
        return Err(ProviderError::new(
            "the member's kubeconfig names no server for its current context",
        ));
    }
    let token = user["token"].as_str().unwrap_or_default().to_string();
    if token.is_empty() {
        return Err(ProviderError::new("the member's kubeconfig has no bearer token").with_detail(
            "joining in Push mode needs a token the control plane can use (a ServiceAccount token, as `karmadactl join` creates); client certificates and exec plugins cannot be handed over",
        ));
    }
    Ok(Access {
        server,
        token,
        ca: cluster["certificate-authority-data"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// Sets the object's endpoint, Secret reference and defaults from the credentials.
pub fn fill(
    c: &Credentials,
    obj: &mut Json,
    name: &str,
    kubeconfig: &str,
) -> Result<(), ProviderError> {
    let access = access(kubeconfig)?;
    set(obj, c.endpoint, json!(access.server));
    set(
        obj,
        c.secret_ref,
        json!({"namespace": c.secret_namespace, "name": name}),
    );
    for (path, value) in c.defaults {
        if crate::object::at(obj, path).is_none() {
            set(obj, path, json!(value));
        }
    }
    Ok(())
}

fn set(obj: &mut Json, dotted: &str, value: Json) {
    let mut at = obj;
    let mut parts = dotted.split('.').peekable();
    while let Some(p) = parts.next() {
        if !at.is_object() {
            *at = json!({});
        }
        if parts.peek().is_none() {
            at[p] = value;
            return;
        }
        at = &mut at[p];
    }
}

/// The namespace and Secret to apply before the object.
pub fn objects(c: &Credentials, name: &str, kubeconfig: &str) -> Result<[Json; 2], ProviderError> {
    use base64::Engine;
    let access = access(kubeconfig)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    Ok([
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": c.secret_namespace}}),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": name, "namespace": c.secret_namespace},
               "data": {"token": b64(&access.token), "caBundle": access.ca}}),
    ])
}

/// The kubeconfig a value holds for `kind`'s credentials, when known.
pub fn kubeconfig(kind: &Kind, v: &Value) -> Option<String> {
    let c = kind.credentials?;
    match v.get_attr(c.attr).map(|v| v.unmark().0) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: m\ncontexts:\n- name: m\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: Q0E=}\nusers:\n- name: u\n  user: {token: abc}\n";

    #[test]
    fn the_current_context_gives_server_token_and_ca() {
        assert_eq!(
            access(KUBECONFIG).unwrap(),
            Access {
                server: "https://127.0.0.1:6443".into(),
                token: "abc".into(),
                ca: "Q0E=".into()
            }
        );
        let certs = KUBECONFIG.replace("{token: abc}", "{client-certificate-data: eA==}");
        assert!(
            access(&certs)
                .unwrap_err()
                .message
                .contains("no bearer token")
        );
        assert!(
            access(&KUBECONFIG.replace("current-context: m", "current-context: x"))
                .unwrap_err()
                .message
                .contains("no context \"x\"")
        );
    }

    #[test]
    fn the_object_points_at_the_secret() {
        static C: Credentials = Credentials {
            attr: "kubeconfig",
            doc: "",
            secret_namespace: "karmada-cluster",
            endpoint: "spec.apiEndpoint",
            secret_ref: "spec.secretRef",
            defaults: &[("spec.syncMode", "Push")],
        };
        let mut obj = json!({"spec": {"region": "cn"}});
        fill(&C, &mut obj, "beijing", KUBECONFIG).unwrap();
        assert_eq!(
            obj["spec"],
            json!({"region": "cn", "apiEndpoint": "https://127.0.0.1:6443", "syncMode": "Push",
                   "secretRef": {"namespace": "karmada-cluster", "name": "beijing"}})
        );
        let [ns, secret] = objects(&C, "beijing", KUBECONFIG).unwrap();
        assert_eq!(ns["metadata"]["name"], "karmada-cluster");
        assert_eq!(secret["data"]["token"], "YWJj");
    }
}
