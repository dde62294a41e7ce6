//! HTTP for module sources: one TLS setup (rustls with ring, the provider the Kubernetes
//! client already uses) shared by the OCI client and the registry protocol.

/// Installs ring as the process's rustls crypto provider, once (later calls do nothing).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for registry requests: HTTPS with the system's roots, 10 s to connect.
pub fn client() -> Result<reqwest::Client, String> {
    install_crypto();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(120))
        .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// `http://` for loopback hosts (tests, local mirrors), `https://` for every other host.
pub fn base_url(host: &str) -> String {
    let scheme = if crate::oci::is_loopback(host) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}
