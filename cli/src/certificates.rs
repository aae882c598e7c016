//! `tessera tls-certificates`: a certificate authority and one member identity for a
//! TLS cluster, so a cluster can be encrypted without an outside PKI (the role of
//! Dask's `Security.temporary()`).
//!
//! The directory gets `ca.pem` (the authority's certificate), `cert.pem` (a
//! certificate it signed, valid for serving and dialling, naming the given hosts) and
//! `key.pem` (that certificate's key, readable by the owner only). The authority's own
//! key is not kept: to add a host later, make a new set.

use crate::files::write_atomically;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;

/// Hosts every certificate names, besides those asked for: clusters on one machine.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir` for a certificate naming
/// `hosts` (DNS names or IP addresses) and the loopback names.
pub fn create(dir: &Path, hosts: &[String]) -> Result<(), String> {
    let rcgen_error = |e: rcgen::Error| format!("cannot make the certificates: {e}");
    let mut names: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Tessera cluster CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(rcgen_error)?).map_err(rcgen_error)?;

    let mut member = CertificateParams::new(names.clone()).map_err(rcgen_error)?;
    member.distinguished_name.push(DnType::CommonName, "Tessera cluster member");
    member.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    member.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().map_err(rcgen_error)?;
    let cert = member.signed_by(&key, &ca).map_err(rcgen_error)?;

    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write_atomically(&dir.join("ca.pem"), &ca.pem(), 0o644)?;
    write_atomically(&dir.join("cert.pem"), &cert.pem(), 0o644)?;
    write_atomically(&dir.join("key.pem"), &key.serialize_pem(), 0o600)?;
    println!("wrote ca.pem, cert.pem and key.pem to {} for {}", dir.display(), names.join(", "));
    println!("export TESSERA_TLS_CA={}", dir.join("ca.pem").display());
    println!("export TESSERA_TLS_CERT={}", dir.join("cert.pem").display());
    println!("export TESSERA_TLS_KEY={}", dir.join("key.pem").display());
    Ok(())
}
