//! The connection to the camera: plain TCP or TLS (rustls 0.23 with ring, the
//! one TLS stack of the binary: tiny_http and ureq use it too), with every
//! connect, read and write bounded by
//! a deadline so the capture thread never blocks past what it asked for.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::url::Url;
use crate::sync::lock;

/// Longest wait for one address to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

use crate::ca::CA_DIR;

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// What a bounded read got.
pub enum Got {
    Bytes(usize),
    TimedOut,
    Eof,
}

impl Conn {
    /// Resolves the host and connects to each address in turn, each within
    /// [`CONNECT_TIMEOUT`] and all by `deadline`. Name resolution itself
    /// cannot be bounded with std; the capture thread's detached opener
    /// covers that.
    pub fn connect(
        url: &Url,
        deadline: Instant,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Conn, String> {
        // TLS is set up first: a URL it cannot serve fails without a connect.
        let tls_client = if url.tls {
            Some(tls_client(url, tls)?)
        } else {
            None
        };
        let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
            .collect();
        let mut last = None;
        let mut sock = None;
        for addr in &addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(addr, left.min(CONNECT_TIMEOUT)) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        let sock = sock.ok_or_else(|| {
            last.unwrap_or_else(|| format!("cannot connect to {}: no address", url.host_header()))
        })?;
        // Frames are small writes the other way only; the request should
        // not wait for Nagle.
        let _ = sock.set_nodelay(true);
        match tls_client {
            None => Ok(Conn::Plain(sock)),
            Some(c) => Ok(Conn::Tls(Box::new(StreamOwned::new(c, sock)))),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    /// Reads what is there, waiting until `deadline` at most.
    pub fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<Got, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero timeout means "block" to the OS; ask for a millisecond.
            self.tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| format!("cannot set a read timeout: {e}"))?;
            let r = match self {
                Conn::Plain(s) => s.read(buf),
                Conn::Tls(t) => t.read(buf),
            };
            return match r {
                Ok(0) => Ok(Got::Eof),
                Ok(n) => Ok(Got::Bytes(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(Got::TimedOut)
                }
                // A TLS peer that closes without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Got::Eof),
                Err(e) => Err(io_text("read", &e, self.is_tls())),
            };
        }
    }

    /// Writes all of `data` by `deadline` (for TLS this runs the handshake).
    pub fn write_by(&mut self, data: &[u8], deadline: Instant) -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out before sending the request".into());
        }
        let sock = self.tcp();
        sock.set_write_timeout(Some(left))
            .and_then(|_| sock.set_read_timeout(Some(left)))
            .map_err(|e| format!("cannot set a timeout: {e}"))?;
        let r = match self {
            Conn::Plain(s) => s.write_all(data).and_then(|_| s.flush()),
            Conn::Tls(t) => t.write_all(data).and_then(|_| t.flush()),
        };
        r.map_err(|e| io_text("send the request", &e, self.is_tls()))
    }

    fn is_tls(&self) -> bool {
        matches!(self, Conn::Tls(_))
    }
}

fn tls_client(url: &Url, tls: Option<&Arc<ClientConfig>>) -> Result<ClientConnection, String> {
    // A name, or an IP address (checked against the certificate's IP names).
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| format!("{:?} is not a valid TLS server name", url.host))?;
    let config = match tls {
        Some(c) => c.clone(),
        None => system_tls()?,
    };
    ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))
}

fn io_text(what: &str, e: &io::Error, tls: bool) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("timed out trying to {what}")
        }
        io::ErrorKind::ConnectionReset => "the camera reset the connection".into(),
        // rustls reports handshake and certificate failures as InvalidData.
        io::ErrorKind::InvalidData if tls => format!(
            "TLS failed: {e} (the camera's certificate must be valid for its name and \
             signed by a CA in {CA_DIR}; self-signed certificates are not accepted)"
        ),
        _ => format!("cannot {what}: {e}"),
    }
}

/// The client configuration trusting the system's CAs, built once (the
/// bundle holds ~150 certificates) and kept; a failure is not kept, so a
/// bundle installed later is picked up at the next reopen.
fn system_tls() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: Mutex<Option<Arc<ClientConfig>>> = Mutex::new(None);
    let mut cached = lock(&CONFIG);
    if let Some(c) = &*cached {
        return Ok(c.clone());
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(crate::ca::trusted().map_err(|e| e.to_string())?);
    let config = Arc::new(client_config(roots));
    *cached = Some(config.clone());
    Ok(config)
}

/// A TLS client configuration trusting `roots` (tests pass their own CA).
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_system_store_or_says_why_not() {
        match system_tls() {
            Ok(c) => assert!(Arc::ptr_eq(&c, &system_tls().unwrap()), "built once"),
            Err(e) => assert!(e.contains("ca-certificates"), "{e}"),
        }
    }

    #[test]
    fn https_to_an_ip_address_is_tried() {
        // rustls 0.23 checks an IP address against the certificate's IP
        // names (0.20 could not): the connection itself is what fails here.
        let url = Url::parse("https://127.0.0.1:1/").unwrap();
        let roots = Arc::new(client_config(RootCertStore::empty()));
        let deadline = Instant::now() + Duration::from_secs(2);
        let e = Conn::connect(&url, deadline, Some(&roots)).err().unwrap();
        assert!(!e.contains("IP address") && e.contains("refused"), "{e}");
    }
}
