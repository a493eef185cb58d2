//! TLS shared by amqps:// and rediss://: one crypto provider for the process, CA files, and error hints.
//!
//! lapin, reqwest and redis all use rustls with the `ring` provider (aws-lc-rs is not compiled in);
//! [`install_crypto_provider`] makes ring the process default so rustls never has to guess.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{key} = {path:?}: {detail}")]
pub struct CaFileError {
    pub key: &'static str,
    pub path: String,
    pub detail: String,
}

/// Make ring the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Read a PEM file of CA certificates; `key` names the setting in errors. The file must hold at least one
/// certificate.
pub fn read_ca_file(key: &'static str, path: &str) -> Result<Vec<u8>, CaFileError> {
    let err = |detail: String| CaFileError {
        key,
        path: path.to_string(),
        detail,
    };
    let pem = std::fs::read(Path::new(path)).map_err(|e| err(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "no certificate in the file (expected -----BEGIN CERTIFICATE----- blocks)".into(),
        ));
    }
    Ok(pem)
}

/// What to check when a connection to `url_key`'s server failed with `detail`: a certificate problem
/// points at `ca_key` or the host name, anything else at the server itself.
pub fn connect_hint(detail: &str, url_key: &str, ca_key: &str) -> String {
    if detail.contains("UnknownIssuer") || detail.contains("unknown issuer") {
        format!("the server's certificate is not signed by a trusted CA: set {ca_key} to the PEM file of the CA that signed it")
    } else if detail.contains("NotValidForName") || detail.contains("not valid for name") {
        format!("the server's certificate does not name the host in {url_key}: use a host name or IP address the certificate lists")
    } else if detail.contains("certificate") || detail.contains("InvalidCertificate") {
        format!("the server's TLS certificate was refused: check it and {ca_key}")
    } else if detail.contains("CorruptMessage")
        || detail.contains("InvalidContentType")
        || detail.contains("received corrupt message")
    {
        format!("the server did not speak TLS: is the port in {url_key} a TLS port?")
    } else {
        format!("is the server running and reachable? check {url_key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_installed_as_the_process_provider() {
        install_crypto_provider();
        install_crypto_provider(); // idempotent
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a default provider");
        let ring = rustls::crypto::ring::default_provider();
        let names = |p: &rustls::crypto::CryptoProvider| -> Vec<String> {
            p.cipher_suites
                .iter()
                .map(|c| format!("{:?}", c.suite()))
                .collect()
        };
        assert_eq!(names(installed), names(&ring));
        // What redis and reqwest do: build a client config from the process default.
        let _ = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    }

    #[test]
    fn ca_file_errors_name_the_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = read_ca_file("amqp.ca_file", missing.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("amqp.ca_file = "), "{e}");
        assert!(e.to_string().contains("cannot read"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let e = read_ca_file("redis.ca_file", empty.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("no certificate"), "{e}");
    }

    #[test]
    fn hints_point_at_the_right_setting() {
        let h = connect_hint(
            "invalid peer certificate: UnknownIssuer",
            "amqp.url",
            "amqp.ca_file",
        );
        assert!(h.contains("set amqp.ca_file"), "{h}");
        let h = connect_hint(
            "invalid peer certificate: certificate not valid for name \"localhost\"",
            "redis.url",
            "redis.ca_file",
        );
        assert!(h.contains("does not name the host in redis.url"), "{h}");
        let h = connect_hint(
            "Connection refused (os error 111)",
            "amqp.url",
            "amqp.ca_file",
        );
        assert!(h.contains("check amqp.url"), "{h}");
    }
}
