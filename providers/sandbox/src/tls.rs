//! Per-cluster certificates: a self-signed CA and a loopback serving certificate it signs.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::sync::Arc;
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

/// PEM-encoded material for one cluster's endpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA named after the cluster and a serving certificate for 127.0.0.1 and localhost.
pub fn generate(cluster: &str) -> Result<Credentials, String> {
    let err =
        |e: rcgen::Error| format!("generating certificates for sandbox cluster {cluster:?}: {e}");
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("flotilla sandbox CA ({cluster})"),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    params
        .distinguished_name
        .push(DnType::CommonName, format!("sandbox-apiserver-{cluster}"));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(Credentials {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A rustls server configuration speaking HTTP/1.1.
pub fn server_config(creds: &Credentials) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = vec![
        rustls::pki_types::CertificateDer::from_pem_slice(creds.cert_pem.as_bytes())
            .map_err(|e| format!("serving certificate: {e}"))?,
    ];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes())
        .map_err(|e| format!("serving key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn generates_usable_material() {
        let creds = super::generate("test").unwrap();
        assert!(creds.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(super::server_config(&creds).is_ok());
    }
}
