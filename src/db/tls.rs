//! TLS the way psql does it: `sslmode` disable / allow / prefer / require / verify-ca / verify-full,
//! with `sslrootcert` (a PEM file, or `system` for the operating system's store).
//!
//! rust-postgres only knows disable/prefer/require, so the certificate checks that tell
//! require, verify-ca and verify-full apart live here, in the rustls verifier we hand it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// psql's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// libpq tries plain first; we try TLS first, which succeeds wherever `allow` does.
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: &str) -> anyhow::Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => bail!(
                "unknown sslmode: use disable, allow, prefer, require, verify-ca or verify-full"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What rust-postgres itself should do at the protocol level.
    pub fn protocol_mode(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                postgres::config::SslMode::Require
            }
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// `sslrootcert=system`: the operating system's store.
    System,
    /// A PEM file named by `sslrootcert` / `PGSSLROOTCERT`.
    File(PathBuf),
    /// libpq's default, `~/.postgresql/root.crt`, used only if it exists.
    DefaultFile(PathBuf),
    None,
}

/// The TLS settings of one connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub root_certs: RootCerts,
}

impl TlsPolicy {
    /// Builds the connector rust-postgres uses for the handshake.
    pub fn connector(&self) -> anyhow::Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer => {
                Arc::new(AcceptAnyCertificate::new(&provider))
            }
            // libpq: require verifies the chain only when a root certificate is available.
            SslMode::Require => match self.load_roots(false)? {
                Some(roots) => Arc::new(ChainOnly(webpki_verifier(roots, &provider)?)),
                None => Arc::new(AcceptAnyCertificate::new(&provider)),
            },
            SslMode::VerifyCa => {
                let roots = self.load_roots(true)?.expect("required roots");
                Arc::new(ChainOnly(webpki_verifier(roots, &provider)?))
            }
            SslMode::VerifyFull => {
                let roots = self.load_roots(true)?.expect("required roots");
                webpki_verifier(roots, &provider)?
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    fn load_roots(&self, required: bool) -> anyhow::Result<Option<RootCertStore>> {
        let mut store = RootCertStore::empty();
        match &self.root_certs {
            RootCerts::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
            }
            RootCerts::File(path) => add_pem_file(&mut store, path)?,
            RootCerts::DefaultFile(path) if path.exists() => add_pem_file(&mut store, path)?,
            RootCerts::DefaultFile(_) | RootCerts::None => {}
        }
        if store.is_empty() {
            if required {
                bail!(
                    "sslmode={} needs a trusted root certificate, and none was found: \
                     add sslrootcert=/path/to/root.crt (or sslrootcert=system) to the URL, \
                     set PGSSLROOTCERT, or put the CA at ~/.postgresql/root.crt",
                    self.mode
                );
            }
            return Ok(None);
        }
        Ok(Some(store))
    }
}

fn add_pem_file(store: &mut RootCertStore, path: &Path) -> anyhow::Result<()> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading root certificate {}", path.display()))?;
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        bail!(
            "root certificate file {} holds no certificate",
            path.display()
        );
    }
    Ok(())
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("setting up TLS certificate verification")
}

/// verify-ca: the chain must lead to a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // WebPkiServerVerifier checks the chain before the name, so a name error means
        // the chain was already found valid.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// prefer / require without a root certificate: encrypt, but trust any certificate, as libpq does.
/// Handshake signatures are still checked, so the server must hold the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    fn new(provider: &CryptoProvider) -> AcceptAnyCertificate {
        AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_psql_sslmode_parses_and_round_trips() {
        for name in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(name).unwrap().as_str(), name);
        }
        let err = SslMode::parse("verify_full").unwrap_err().to_string();
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn verify_modes_without_a_root_certificate_explain_what_to_do() {
        let policy = TlsPolicy {
            mode: SslMode::VerifyFull,
            root_certs: RootCerts::DefaultFile(PathBuf::from("/nonexistent/root.crt")),
        };
        let err = policy.connector().err().expect("must fail").to_string();
        assert!(err.contains("sslrootcert"), "{err}");
    }

    #[test]
    fn require_without_a_root_certificate_still_builds() {
        let policy = TlsPolicy {
            mode: SslMode::Require,
            root_certs: RootCerts::DefaultFile(PathBuf::from("/nonexistent/root.crt")),
        };
        assert!(policy.connector().is_ok());
    }
}
