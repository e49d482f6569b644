//! An `https://` front for an S3 server that speaks plain HTTP (moto): TLS
//! with a certificate for `localhost` and `127.0.0.1` signed by a CA made
//! for the test (rcgen), every byte relayed as it is. It counts the
//! handshakes that completed and those that failed (a client that does not
//! trust the CA aborts its handshake).

use std::io::ErrorKind;
use std::sync::mpsc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

use super::*;

pub struct TlsFront {
    addr: SocketAddr,
    ca_pem: String,
    handshakes: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

/// A CA, and a certificate it signed for `localhost` and `127.0.0.1`: the
/// CA's PEM, the leaf's DER and its key's PKCS#8 DER.
fn certificates() -> (String, Vec<u8>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "vr-test S3 CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    (ca.pem(), leaf.der().to_vec(), leaf_key.serialize_der())
}

impl TlsFront {
    pub fn start(upstream: SocketAddr) -> TlsFront {
        let (ca_pem, leaf, key) = certificates();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .expect("the front's certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (ok, bad, stop) = (handshakes.clone(), failed.clone(), done.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (config, ok, bad) = (config.clone(), ok.clone(), bad.clone());
                std::thread::spawn(move || {
                    let _ = relay(conn, upstream, config, &ok, &bad);
                });
            }
        });
        TlsFront {
            addr,
            ca_pem,
            handshakes,
            failed,
            done,
        }
    }

    /// `https://127.0.0.1:PORT` (the certificate names the address too)
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The CA that signed the front's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed so far (e.g. the client refused the
    /// certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn relay(
    mut tcp: TcpStream,
    upstream: SocketAddr,
    config: Arc<ServerConfig>,
    ok: &AtomicUsize,
    bad: &AtomicUsize,
) -> std::io::Result<()> {
    let mut tls = ServerConnection::new(config).map_err(std::io::Error::other)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut tcp) {
            bad.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
    }
    ok.fetch_add(1, Ordering::SeqCst);
    let mut up = TcpStream::connect(upstream)?;
    // The server's bytes come over a channel; the client's are polled.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut up_r = up.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = up_r.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    tcp.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        loop {
            match rx.try_recv() {
                Ok(b) => stream.write_all(&b)?,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                    return Ok(());
                }
            }
        }
        stream.flush()?;
        match stream.read(&mut buf) {
            Ok(0) => {
                let _ = up.shutdown(Shutdown::Write);
                return Ok(());
            }
            Ok(n) => up.write_all(&buf[..n])?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
}
