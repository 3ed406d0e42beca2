//! TLS the way psql does it: `sslmode` disable / allow / prefer / require / verify-ca / verify-full,
//! with `sslrootcert` (a PEM file, or `system` for the operating system's store), and a client
//! certificate (`sslcert`/`sslkey`, `PGSSLCERT`/`PGSSLKEY`, `~/.postgresql/postgresql.crt` and
//! `.key`) with libpq's precedence and its rule for the key file's permissions.
//!
//! rust-postgres only knows disable/prefer/require, so the certificate checks that tell
//! require, verify-ca and verify-full apart live here, in the rustls verifier we hand it. Where
//! libpq verifies nothing about the certificate (prefer, require without a root certificate), any
//! certificate is accepted, X.509 version 1 included — the handshake signature is still checked
//! against its key, so the server must hold it.

use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
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

/// The certificate metricsctl presents when the server asks for one, as libpq finds it: the
/// connection string's `sslcert`/`sslkey`, else `PGSSLCERT`/`PGSSLKEY`, else
/// `~/.postgresql/postgresql.crt` and `.key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCertificate {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl ClientCertificate {
    /// The certificate chain and key, or `None` where there is no certificate file (libpq then
    /// goes on without one). A certificate without its key, a key others may read, or a key that
    /// cannot be used is an error, as in libpq.
    pub fn load(
        &self,
    ) -> anyhow::Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
        let home_file = |name: &str| self.home.as_ref().map(|h| h.join(".postgresql").join(name));
        let Some(cert_path) = self.cert.clone().or_else(|| home_file("postgresql.crt")) else {
            return Ok(None);
        };
        match std::fs::metadata(&cert_path) {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => bail!(
                "could not open certificate file {}: {e}",
                cert_path.display()
            ),
            Ok(_) => {}
        }
        let certs = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading the client certificate {}", cert_path.display()))?;
        if certs.is_empty() {
            bail!(
                "the client certificate file {} holds no certificate",
                cert_path.display()
            );
        }
        let Some(key_path) = self.key.clone().or_else(|| home_file("postgresql.key")) else {
            bail!(
                "certificate present ({}), but no private key file",
                cert_path.display()
            );
        };
        let key = read_private_key(&cert_path, &key_path)?;
        Ok(Some((certs, key)))
    }
}

/// The client's private key, read as libpq reads it: the file must exist and be a regular file
/// others may not read (libpq's rule below), and not encrypted (sslpassword is not read).
fn read_private_key(cert_path: &Path, key_path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let metadata = std::fs::metadata(key_path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => anyhow!(
            "certificate present ({}), but not private key file \"{}\"",
            cert_path.display(),
            key_path.display()
        ),
        _ => anyhow!(
            "could not stat private key file \"{}\": {e}",
            key_path.display()
        ),
    })?;
    if !metadata.is_file() {
        bail!(
            "private key file \"{}\" is not a regular file",
            key_path.display()
        );
    }
    // libpq's rule: a root-owned key may be group-readable (0640, for system-wide keys read
    // through a group), any other owner's nothing beyond 0600. Whose it is otherwise does
    // not matter: being able to read it is enough.
    let mode = metadata.permissions().mode();
    let too_open = if metadata.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if too_open {
        bail!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            key_path.display()
        );
    }
    let pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("reading private key file {}", key_path.display()))?;
    if pem.contains("ENCRYPTED") {
        bail!(
            "private key file \"{}\" is encrypted, and metricsctl does not read sslpassword: \
             decrypt it (openssl pkey -in KEY -out KEY.plain, chmod 600)",
            key_path.display()
        );
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .with_context(|| format!("reading private key file {}", key_path.display()))
}

/// The client certificate and key, handed to rustls as they are: rustls' own loader parses the
/// certificate with webpki, which takes X.509 version 3 only, and `openssl x509 -req` makes
/// version 1 certificates unless told otherwise; libpq takes both.
#[derive(Debug)]
struct ClientIdentity(Arc<rustls::sign::CertifiedKey>);

impl ClientIdentity {
    fn new(
        provider: &CryptoProvider,
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> anyhow::Result<ClientIdentity> {
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .context("the client's private key is not of a kind TLS can sign with")?;
        let certificate_key = subject_public_key_info(&certs[0])
            .map_err(|e| anyhow!("the client certificate cannot be read: {e}"))?;
        if signing_key
            .public_key()
            .is_some_and(|key| key.as_ref() != certificate_key.as_ref())
        {
            bail!("the client certificate and the private key do not belong together");
        }
        Ok(ClientIdentity(Arc::new(rustls::sign::CertifiedKey::new(
            certs,
            signing_key,
        ))))
    }
}

impl rustls::client::ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The TLS settings of one connection target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub root_certs: RootCerts,
    pub client: ClientCertificate,
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
                Some((roots, pinned)) => Arc::new(TrustedChain {
                    chain: webpki_verifier(roots, &provider)?,
                    pinned,
                    names: NameCheck::Skipped,
                }),
                None => Arc::new(AcceptAnyCertificate::new(&provider)),
            },
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let (roots, pinned) = self.load_roots(true)?.expect("required roots");
                Arc::new(TrustedChain {
                    chain: webpki_verifier(roots, &provider)?,
                    pinned,
                    names: if self.mode == SslMode::VerifyFull {
                        NameCheck::Compared
                    } else {
                        NameCheck::Skipped
                    },
                })
            }
        };
        let identity = if self.mode == SslMode::Disable {
            None
        } else {
            self.client.load()?
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("setting up TLS")?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match identity {
            Some((certs, key)) => builder
                .with_client_cert_resolver(Arc::new(ClientIdentity::new(&provider, certs, key)?)),
            None => builder.with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The trusted roots, and the certificates of the root file as they are (to recognise a
    /// server showing one of them itself).
    fn load_roots(
        &self,
        required: bool,
    ) -> anyhow::Result<Option<(RootCertStore, Vec<CertificateDer<'static>>)>> {
        let mut store = RootCertStore::empty();
        let mut pinned = Vec::new();
        match &self.root_certs {
            RootCerts::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
            }
            RootCerts::File(path) => pinned = add_pem_file(&mut store, path)?,
            RootCerts::DefaultFile(path) if path.exists() => {
                pinned = add_pem_file(&mut store, path)?
            }
            RootCerts::DefaultFile(_) | RootCerts::None => {}
        }
        if store.is_empty() && pinned.is_empty() {
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
        Ok(Some((store, pinned)))
    }
}

/// Adds a PEM file's certificates to `store`, and returns them as they are. A version 1
/// certificate cannot be a webpki trust anchor, but is still trusted as itself (see `TrustedChain`).
fn add_pem_file(
    store: &mut RootCertStore,
    path: &Path,
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading root certificate {}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "root certificate file {} holds no certificate",
            path.display()
        );
    }
    store.add_parsable_certificates(certs.clone());
    Ok(certs)
}

fn webpki_verifier(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> anyhow::Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("setting up TLS certificate verification")
}

/// verify-ca (and require with a root file): the chain must lead to a trusted root; the host name
/// is not compared. verify-full: the host name must be the certificate's too. A server that shows
/// a certificate of the root file itself is trusted as itself, whatever its version: that is what
/// OpenSSL (and so libpq) accepts for a self-signed X.509 version 1 certificate, which webpki
/// cannot take as a trust anchor; its name is then compared here as libpq compares it.
#[derive(Debug)]
struct TrustedChain {
    chain: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    names: NameCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameCheck {
    Skipped,
    Compared,
}

impl ServerCertVerifier for TrustedChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let pinned = self
            .pinned
            .iter()
            .any(|trusted| trusted.as_ref() == end_entity.as_ref());
        let name_matches_or_skipped = || -> Result<bool, rustls::Error> {
            Ok(self.names == NameCheck::Skipped
                || certificate_names(end_entity)?
                    .iter()
                    .any(|name| name_matches(name, server_name)))
        };
        if pinned {
            return if name_matches_or_skipped()? {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                ))
            };
        }
        let verdict = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        // WebPkiServerVerifier checks the chain before the name, so a name error means the chain
        // was already found valid.
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.names == NameCheck::Skipped => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_with_key(message, cert, dss, &chain_algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = subject_public_key_info(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &chain_algorithms(),
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

fn chain_algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// The names a certificate is for, as libpq reads them: its subject alternative names (DNS names
/// and IP addresses), or, where it has none, its common name.
fn certificate_names(cert: &CertificateDer<'_>) -> Result<Vec<String>, rustls::Error> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            std::io::Error::other(format!("the server's certificate cannot be read: {e}")),
        ))))
    })?;
    let mut names = Vec::new();
    if let Ok(Some(alternatives)) = parsed.subject_alternative_name() {
        for name in &alternatives.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap()).to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap()).to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            parsed
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Ok(names)
}

/// Whether a certificate's name is the host connected to: equal ignoring case, or a `*.` wildcard
/// standing for one leading label of a DNS name (libpq's rule).
fn name_matches(name: &str, server: &ServerName<'_>) -> bool {
    let host = match server {
        ServerName::DnsName(dns) => dns.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => return false,
    };
    if name.eq_ignore_ascii_case(&host) {
        return true;
    }
    match (name.strip_prefix("*."), host.split_once('.')) {
        (Some(suffix), Some((label, rest))) => {
            !label.is_empty()
                && !matches!(server, ServerName::IpAddress(_))
                && suffix.eq_ignore_ascii_case(rest)
        }
        _ => false,
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
        verify_tls12_with_key(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = subject_public_key_info(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.2 handshake signature checked with the certificate's key alone (rustls' own check
/// parses the certificate with webpki, which takes version 3 only).
fn verify_tls12_with_key(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let spki = subject_public_key_info(cert)?;
    let key = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|e| rustls::Error::General(format!("the server's public key: {e}")))?;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algorithms)| *algorithms)
        .ok_or(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
    // TLS 1.2 does not say which of the scheme's algorithms: the key's own accepts.
    if candidates.iter().any(|algorithm| {
        key.verify_signature(*algorithm, message, dss.signature())
            .is_ok()
    }) {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ))
    }
}

/// The key of any X.509 certificate, whatever its version: what the handshake signature is checked
/// with where the certificate itself is not verified.
fn subject_public_key_info(
    cert: &CertificateDer<'_>,
) -> Result<SubjectPublicKeyInfoDer<'static>, rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            std::io::Error::other(format!("the server's certificate cannot be read: {e}")),
        ))))
    })?;
    Ok(SubjectPublicKeyInfoDer::from(
        parsed.public_key().raw.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_match_as_libpq_matches_them() {
        let dns = |name: &'static str| ServerName::try_from(name).unwrap();
        assert!(name_matches("db.example.com", &dns("DB.Example.com")));
        assert!(name_matches("*.example.com", &dns("db.example.com")));
        assert!(!name_matches("*.example.com", &dns("example.com")));
        assert!(!name_matches("*.example.com", &dns("a.db.example.com")));
        assert!(!name_matches("db.example.com", &dns("db.example.org")));
        assert!(name_matches("127.0.0.1", &dns("127.0.0.1")));
        assert!(!name_matches("127.0.0.2", &dns("127.0.0.1")));
    }

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
            client: ClientCertificate::default(),
        };
        let err = policy.connector().err().expect("must fail").to_string();
        assert!(err.contains("sslrootcert"), "{err}");
    }

    #[test]
    fn require_without_a_root_certificate_still_builds() {
        let policy = TlsPolicy {
            mode: SslMode::Require,
            root_certs: RootCerts::DefaultFile(PathBuf::from("/nonexistent/root.crt")),
            client: ClientCertificate::default(),
        };
        assert!(policy.connector().is_ok());
    }
}
