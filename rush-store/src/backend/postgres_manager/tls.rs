//! Opening the socket: plain, or TLS (feature `postgres-tls`, rustls) checked against the
//! certificate authority the configuration names.

use super::PostgresConfig;
use super::connection::pg_error;
use crate::error::{Error, Result};
use tokio_postgres::Client;

/// Whether and how to encrypt the connection to the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PostgresTls {
    /// A plain connection (a server on the same machine or a private network).
    #[default]
    Disabled,
    /// TLS, required: the server's certificate must chain to the certificate authority in
    /// this PEM file, and name the host of the URL. Needs the `postgres-tls` feature.
    Required {
        /// The PEM file of the certificate authority to trust.
        ca_file: std::path::PathBuf,
    },
}

/// Where a connection's notices go, if anywhere.
pub(super) type Notices = Option<tokio::sync::mpsc::UnboundedSender<String>>;

/// Connects with `settings` and spawns the connection's task on the current runtime,
/// passing the payloads of notices it receives to `notices`.
pub(super) async fn connect(
    settings: &tokio_postgres::Config,
    config: &PostgresConfig,
    notices: Notices,
) -> Result<Client> {
    match &config.tls {
        PostgresTls::Disabled => {
            let (client, connection) = settings
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| pg_error("connect", &e))?;
            drive(connection, notices);
            Ok(client)
        }
        PostgresTls::Required { ca_file } => connect_tls(settings, ca_file, notices).await,
    }
}

/// A connection for `LISTEN`: its notices' payloads go to `notices`.
pub(super) async fn connect_listening(
    config: &PostgresConfig,
    notices: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<Client> {
    let settings = config.settings()?;
    let connecting = connect(&settings, config, Some(notices));
    tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| super::connection::gone("connect", "the server did not answer in time"))?
}

/// Spawns the task that drives `connection` until it closes.
fn drive<S, T>(mut connection: tokio_postgres::Connection<S, T>, notices: Notices)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use std::task::Poll;
    tokio::spawn(std::future::poll_fn(move |cx| {
        loop {
            match connection.poll_message(cx) {
                Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notification(notice)))) => {
                    if let Some(notices) = &notices {
                        let _ = notices.send(notice.payload().to_owned());
                    }
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }));
}

#[cfg(not(feature = "postgres-tls"))]
async fn connect_tls(
    _: &tokio_postgres::Config,
    _: &std::path::Path,
    _: Notices,
) -> Result<Client> {
    Err(Error::InvalidArgument(
        "TLS to PostgreSQL needs rush-store's `postgres-tls` feature".into(),
    ))
}

#[cfg(feature = "postgres-tls")]
async fn connect_tls(
    settings: &tokio_postgres::Config,
    ca_file: &std::path::Path,
    notices: Notices,
) -> Result<Client> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let refused = |e: &dyn std::fmt::Display| {
        Error::InvalidArgument(format!(
            "TLS certificate authority {}: {e}",
            ca_file.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca_file).map_err(|e| refused(&e))? {
        roots
            .add(certificate.map_err(|e| refused(&e))?)
            .map_err(|e| refused(&e))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::storage("configure TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut settings = settings.clone();
    settings.ssl_mode(tokio_postgres::config::SslMode::Require);
    let (client, connection) = settings
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .await
        .map_err(|e| pg_error("connect", &e))?;
    drive(connection, notices);
    Ok(client)
}
