//! The TLS settings of the client: rustls with the ring provider, the
//! system's CA store (as the original client trusted it; `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` point elsewhere) and, optionally, the CAs of a PEM file (a
//! lab's private CA). Mozilla's bundled roots are used only when the system
//! store yields no certificate at all, as in a container without
//! `ca-certificates`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::error::RpcError;

/// A rustls client configuration trusting the system's roots (else
/// Mozilla's) and the certificates of `extra_ca_file`.
pub(crate) fn client_config(extra_ca_file: Option<&Path>) -> Result<ClientConfig, RpcError> {
    let mut roots = system_roots(rustls_native_certs::load_native_certs());
    if let Some(path) = extra_ca_file {
        add_pem_file(&mut roots, path)?;
    }
    // The provider is explicit: the process-wide default is ambiguous when
    // another crate of the binary enables a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| config_error("the TLS provider", error))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The roots of the system store; Mozilla's when it gave none. Unreadable
/// files and unparsable certificates are logged and skipped, as OpenSSL
/// skips them: one bad file in /etc/ssl/certs must not cut the lab off.
fn system_roots(loaded: rustls_native_certs::CertificateResult) -> RootCertStore {
    for error in loaded.errors.iter().take(MAX_LOGGED_ERRORS) {
        tracing::warn!(%error, "a certificate of the system store could not be read; skipped");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        tracing::warn!(
            ignored,
            "the system CA store has no usable certificate; trusting Mozilla's bundled roots"
        );
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        tracing::debug!(added, ignored, "trusting the system CA store");
    }
    roots
}

/// How many errors of the system store are logged, one line each.
const MAX_LOGGED_ERRORS: usize = 5;

/// Adds every certificate of a PEM file; a file without any is an error.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), RpcError> {
    let what = || format!("extra CA file {}", path.display());
    let mut added = 0usize;
    for cert in CertificateDer::pem_file_iter(path).map_err(|error| config_error(what(), error))? {
        let cert = cert.map_err(|error| config_error(what(), error))?;
        roots
            .add(cert)
            .map_err(|error| config_error(what(), error))?;
        added += 1;
    }
    if added == 0 {
        return Err(RpcError::Config {
            what: format!("{}: no certificate in it", what()),
            source: None,
        });
    }
    Ok(())
}

fn config_error(
    what: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> RpcError {
    let what = what.into();
    RpcError::Config {
        what: format!("{what}: {source}"),
        source: Some(Box::new(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_the_system_store() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn an_empty_system_store_falls_back_to_mozillas_roots() {
        let roots = system_roots(rustls_native_certs::CertificateResult::default());
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn unparsable_system_certificates_are_skipped_not_fatal() {
        let mut loaded = rustls_native_certs::CertificateResult::default();
        loaded.certs.push(CertificateDer::from(vec![0u8; 8]));
        let roots = system_roots(loaded);
        assert_eq!(roots.len(), webpki_roots::TLS_SERVER_ROOTS.len());
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error_naming_it() {
        let error = client_config(Some(Path::new("/nonexistent/ca.pem"))).err();
        let message = error.map(|error| error.to_string()).unwrap_or_default();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_a_config_error() -> std::io::Result<()> {
        let path = std::env::temp_dir().join(format!("shard-rpc-empty-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n")?;
        let error = client_config(Some(&path)).err();
        std::fs::remove_file(&path)?;
        let message = error.map(|error| error.to_string()).unwrap_or_default();
        assert!(message.contains("no certificate"), "{message}");
        Ok(())
    }
}
