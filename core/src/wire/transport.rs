//! Connections between cluster members: plain TCP, or mutual TLS (rustls) when the
//! address says `tls://`.
//!
//! An address names its transport the way Dask's do: `tcp://host:port` (or a bare
//! `host:port`) is plain TCP, `tls://host:port` is TLS. A TLS cluster has one
//! certificate authority; every member (scheduler, workers, clients) holds a
//! certificate it signed, and both ends of every connection check the other's
//! (mutual TLS, like Dask's `Security`). The server's certificate must name the host
//! the others dial (a DNS name or an IP address among its subject alternative names).
//! The shared-secret token is still checked inside the encrypted stream.

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The files of a member's TLS identity, all PEM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The certificate authority that signed every member's certificate.
    pub ca: PathBuf,
    /// This member's certificate (chain).
    pub cert: PathBuf,
    /// This member's private key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files named by `TESSERA_TLS_CA`, `TESSERA_TLS_CERT` and `TESSERA_TLS_KEY`,
    /// when all three are set; an error when only some are.
    pub fn from_env() -> Result<Option<TlsFiles>> {
        let vars = ["TESSERA_TLS_CA", "TESSERA_TLS_CERT", "TESSERA_TLS_KEY"]
            .map(|name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from));
        match vars {
            [Some(ca), Some(cert), Some(key)] => Ok(Some(TlsFiles { ca, cert, key })),
            [None, None, None] => Ok(None),
            _ => {
                Err(invalid("set all of TESSERA_TLS_CA, TESSERA_TLS_CERT and TESSERA_TLS_KEY, or none of them".into()))
            }
        }
    }
}

/// An accepted HTTPS connection.
pub type HttpsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A loaded TLS identity: accepts and opens mutually authenticated connections, and
/// serves HTTPS to browsers (which present no certificate).
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    https: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

impl Tls {
    /// Reads and checks the CA, certificate and key of `files`.
    pub fn load(files: &TlsFiles) -> Result<Tls> {
        let ca = read_certificates(&files.ca, "CA")?;
        let chain = read_certificates(&files.cert, "certificate")?;
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| invalid(format!("cannot read a private key from {}: {e}", files.key.display())))?;
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(|e| invalid(format!("{} holds an unusable CA: {e}", files.ca.display())))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let bad_identity = |e: rustls::Error| {
            invalid(format!(
                "the certificate {} and key {} do not make a TLS identity: {e}",
                files.cert.display(),
                files.key.display()
            ))
        };
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| invalid(format!("cannot verify clients with the CA {}: {e}", files.ca.display())))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(bad_identity)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(bad_identity)?;
        let mut https = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(bad_identity)?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(bad_identity)?;
        https.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(bad_identity)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(bad_identity)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            https: TlsAcceptor::from(Arc::new(https)),
        })
    }

    /// Completes the server side of an HTTPS handshake (the dashboard's): the same
    /// certificate as the cluster's connections, but no client certificate asked for,
    /// since browsers have none. The HTTP API checks the token where it matters.
    pub async fn accept_https(&self, stream: TcpStream) -> io::Result<HttpsStream> {
        self.https.accept(stream).await
    }
}

fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("cannot read the {what} file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("the {what} file {} holds no certificate", path.display())));
    }
    Ok(certs)
}

fn invalid(message: String) -> Error {
    Error::invalid("tls", message)
}

/// How an address is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP (`tcp://` or no scheme).
    Tcp,
    /// TLS over TCP (`tls://`).
    Tls,
}

impl Scheme {
    /// The scheme of a `tcp://`, `tls://` or bare `host:port` address, and the
    /// `host:port` part.
    pub fn of(address: &str) -> Result<(Scheme, &str)> {
        if let Some(rest) = address.strip_prefix("tls://") {
            Ok((Scheme::Tls, rest))
        } else if let Some(rest) = address.strip_prefix("tcp://") {
            Ok((Scheme::Tcp, rest))
        } else if let Some((scheme, _)) = address.split_once("://") {
            Err(invalid(format!("the address {address:?} has scheme {scheme:?}; use tcp:// or tls://")))
        } else {
            Ok((Scheme::Tcp, address))
        }
    }

    /// The address of `host_port` reached this way (`tcp://…` or `tls://…`).
    pub fn address(self, host_port: impl std::fmt::Display) -> String {
        match self {
            Scheme::Tcp => format!("tcp://{host_port}"),
            Scheme::Tls => format!("tls://{host_port}"),
        }
    }

    /// The scheme of a listener with (or without) a TLS identity.
    pub fn serving(tls: Option<&Tls>) -> Scheme {
        if tls.is_some() { Scheme::Tls } else { Scheme::Tcp }
    }
}

/// One open connection, plain or encrypted.
pub enum Connection {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, as opened by the dialling side.
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS, as accepted by the listening side.
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Bytes read from a socket at once by the reading half of a split [`Connection`]
/// (a larger frame is read straight into its own buffer).
const READ_BUFFER: usize = 64 << 10;

/// The reading half of a [`Connection`].
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a [`Connection`].
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

impl Connection {
    /// Dials `address` (`tcp://`, `tls://` or bare `host:port`); a `tls://` address
    /// needs `tls`. `what` names the other end in errors ("the scheduler").
    pub async fn open(address: &str, tls: Option<&Tls>, what: &str) -> Result<Connection> {
        let (scheme, host_port) = Scheme::of(address)?;
        let stream = TcpStream::connect(host_port)
            .await
            .map_err(|e| Error::Connection(format!("cannot reach {what} at {address}: {e}")))?;
        stream.set_nodelay(true).map_err(|e| Error::Connection(e.to_string()))?;
        match (scheme, tls) {
            (Scheme::Tcp, _) => Ok(Connection::Plain(stream)),
            (Scheme::Tls, None) => Err(Error::Connection(format!(
                "{what} at {address} wants TLS: give this member a CA, certificate and key \
                 (--tls-ca/--tls-cert/--tls-key or TESSERA_TLS_CA/_CERT/_KEY)"
            ))),
            (Scheme::Tls, Some(tls)) => {
                let host = host_port.rsplit_once(':').map_or(host_port, |(host, _)| host);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| Error::Connection(format!("{host:?} in {address} is not a host name: {e}")))?;
                let stream = tls.connector.connect(name, stream).await.map_err(|e| {
                    Error::Connection(format!("the TLS handshake with {what} at {address} failed: {e}"))
                })?;
                Ok(Connection::ClientTls(Box::new(stream)))
            }
        }
    }

    /// Takes an accepted stream, completing the TLS handshake when the listener has an
    /// identity.
    pub async fn accept(stream: TcpStream, tls: Option<&Tls>) -> Result<Connection> {
        stream.set_nodelay(true).map_err(|e| Error::Connection(e.to_string()))?;
        match tls {
            None => Ok(Connection::Plain(stream)),
            Some(tls) => {
                let stream = tls
                    .acceptor
                    .accept(stream)
                    .await
                    .map_err(|e| Error::Connection(format!("the TLS handshake failed: {e}")))?;
                Ok(Connection::ServerTls(Box::new(stream)))
            }
        }
    }

    /// The local address of the underlying socket.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
        let socket = match self {
            Connection::Plain(s) => s,
            Connection::ClientTls(s) => s.get_ref().0,
            Connection::ServerTls(s) => s.get_ref().0,
        };
        socket.local_addr().map_err(|e| Error::Connection(e.to_string()))
    }

    /// Splits the connection so one task reads while another writes. The reading half
    /// is buffered: a burst of small frames costs one read from the socket, not two
    /// per frame.
    pub fn split(self) -> (Reader, Writer) {
        match self {
            Connection::Plain(s) => {
                let (r, w) = s.into_split();
                (Box::new(BufReader::with_capacity(READ_BUFFER, r)), Box::new(w))
            }
            tls => {
                let (r, w) = tokio::io::split(tls);
                (Box::new(BufReader::with_capacity(READ_BUFFER, r)), Box::new(w))
            }
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Connection::ClientTls(s) => Pin::new(s).poll_read(cx, buf),
            Connection::ServerTls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Connection::ClientTls(s) => Pin::new(s).poll_write(cx, buf),
            Connection::ServerTls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_flush(cx),
            Connection::ClientTls(s) => Pin::new(s).poll_flush(cx),
            Connection::ServerTls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Connection::ClientTls(s) => Pin::new(s).poll_shutdown(cx),
            Connection::ServerTls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_transport() {
        assert_eq!(Scheme::of("tls://10.0.0.1:8786").unwrap(), (Scheme::Tls, "10.0.0.1:8786"));
        assert_eq!(Scheme::of("tcp://host:1").unwrap(), (Scheme::Tcp, "host:1"));
        assert_eq!(Scheme::of("host:1").unwrap(), (Scheme::Tcp, "host:1"));
        assert!(Scheme::of("udp://host:1").unwrap_err().to_string().contains("use tcp:// or tls://"));
        assert_eq!(Scheme::Tls.address("h:2"), "tls://h:2");
    }
}
