//! The throw-away CA, the leaf certificate it signs and the rustls server configuration.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io;
use std::sync::Arc;

/// Every name the real clients may CONNECT to.
const LEAF_NAMES: [&str; 6] =
    ["api.anthropic.com", "platform.claude.com", "console.anthropic.com", "claude.ai", "localhost", "127.0.0.1"];

/// Generates a fresh CA and leaf; returns the CA certificate (PEM) and a server config for the leaf.
pub(crate) fn generate() -> io::Result<(String, Arc<ServerConfig>)> {
    let ca_key = KeyPair::generate().map_err(other)?;
    let mut ca_params = CertificateParams::new(Vec::new()).map_err(other)?;
    ca_params.distinguished_name.push(DnType::CommonName, "keeper-anthropic-mock CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // OpenSSL's strict verification (newer Python, some curl builds) wants the usages spelled out.
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(other)?;
    // `new` turns "127.0.0.1" into an IP-address SAN and the rest into DNS names.
    let mut leaf_params =
        CertificateParams::new(LEAF_NAMES.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).map_err(other)?;
    leaf_params.distinguished_name.push(DnType::CommonName, "api.anthropic.com");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(other)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // An explicit provider: a process-wide default would panic if another crate enabled aws-lc too.
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(other)?;
    // curl offers h2 first; only HTTP/1.1 is spoken here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((ca_cert.pem(), Arc::new(config)))
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(e)
}
