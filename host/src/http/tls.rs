//! HTTPS for the HTTP surface, with the gRPC side's certificate and key:
//! one certificate for the daemon, whichever port a client uses.
//!
//! Rules: the files are read and parsed once, at start, before anything
//! serves, and a mistake names the setting. Handshakes run on their own
//! tasks, so a client that stalls in one never holds up the next
//! connection; a failed handshake is dropped and logged at debug level.
//! Client certificates (`client_ca`) are asked for on the gRPC port only:
//! the dashboard's browsers authenticate with tokens.

use std::path::Path;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

/// A TLS configuration ready to accept connections.
#[derive(Clone)]
pub struct Acceptor(TlsAcceptor);

/// How many finished handshakes may wait for the server to take them.
const READY: usize = 64;

impl Acceptor {
    /// Reads `cert` (a PEM chain) and `key` (its PEM private key).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Acceptor, String> {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read tls_cert {}: {e}", cert.display()))?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("cannot read tls_key {}: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| {
                format!("cannot serve HTTPS with tls_cert/tls_key ({e}); they must be a PEM certificate chain and its private key")
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Acceptor(TlsAcceptor::from(Arc::new(config))))
    }
}

/// A listener whose connections are TLS streams, handshakes done.
pub struct Listener {
    ready: mpsc::Receiver<(
        tokio_rustls::server::TlsStream<TcpStream>,
        std::net::SocketAddr,
    )>,
    addr: std::net::SocketAddr,
}

impl Listener {
    /// Accepts on `tcp` and shakes hands with `acceptor`, from now on.
    pub fn new(tcp: TcpListener, acceptor: Acceptor) -> Listener {
        let addr = tcp
            .local_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        let (tx, ready) = mpsc::channel(READY);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    // The server is gone: let go of the port.
                    _ = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait, as axum does.
                        tracing::debug!(error = %e, "accepting an HTTPS connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.0.clone(), tx.clone());
                tokio::spawn(async move {
                    let shake = acceptor.accept(stream);
                    match tokio::time::timeout(std::time::Duration::from_secs(10), shake).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Listener { ready, addr }
    }
}

impl axum::serve::Listener for Listener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
