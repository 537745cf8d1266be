//! The TLS settings of the client: rustls with the ring provider, Mozilla's
//! root certificates (webpki-roots) and, optionally, the CAs of a PEM file
//! (a lab's private CA).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::error::RpcError;

/// A rustls client configuration trusting Mozilla's roots and the
/// certificates of `extra_ca_file`.
pub(crate) fn client_config(extra_ca_file: Option<&Path>) -> Result<ClientConfig, RpcError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
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
    fn builds_with_mozilla_roots_only() {
        assert!(client_config(None).is_ok());
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
