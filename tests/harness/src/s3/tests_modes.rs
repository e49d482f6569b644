//! The proxy's newer modes (a lost answer, down and up, a look at each
//! head), the TLS front, and the RFC 3339 reading the manifest checks use.

use super::*;

const BUCKET: &str = "vr-test-modes";

#[test]
fn a_lost_answer_is_stored_upstream_and_the_proxy_goes_down_and_up() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = heads.clone();
    let checks = Checks {
        drop_put_answers: 1,
        look: Some(Arc::new(move |h: &Head| {
            log.lock()
                .unwrap()
                .push(format!("{} {}", h.method, h.target))
        })),
        ..Checks::default()
    };
    let proxy = CorruptingProxy::with(s3.addr(), checks);
    let put = |key: &str| {
        let path = format!("/{BUCKET}/{key}");
        signed_request(proxy.addr(), &s3.key, "PUT", &path, &[], &[], b"body")
    };
    let lost = put("one");
    assert!(lost.is_err(), "an answer came: {lost:?}");
    assert_eq!(proxy.dropped(), 1);
    assert_eq!(
        s3.get(BUCKET, "one").as_deref(),
        Some(&b"body"[..]),
        "stored"
    );
    assert_eq!(put("two").unwrap().status, 200, "only the first is lost");
    assert_eq!(
        *heads.lock().unwrap(),
        [format!("PUT /{BUCKET}/one"), format!("PUT /{BUCKET}/two")]
    );
    proxy.set_down(true);
    assert!(put("three").is_err(), "down");
    proxy.set_down(false);
    assert_eq!(put("three").unwrap().status, 200, "up again");
}

#[test]
fn the_tls_front_relays_to_the_server_for_a_client_trusting_its_ca() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let Some(s3) = S3Server::start() else {
        return;
    };
    let front = TlsFront::start(s3.addr());
    assert!(front.endpoint().starts_with("https://127.0.0.1:"));
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(front.ca_pem().as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let port = front
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut stream = rustls::Stream::new(&mut tls, &mut tcp);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!((front.handshakes(), front.failed_handshakes()), (1, 0));
}

#[test]
fn rfc3339_times_read_as_written() {
    use super::recorder::rfc3339_ms;
    for secs in [0u64, 951_782_400, 1_796_651_064, 4_102_444_799] {
        let d = amz_date(secs);
        let t = format!(
            "{}-{}-{}T{}:{}:{}.042Z",
            &d[0..4],
            &d[4..6],
            &d[6..8],
            &d[9..11],
            &d[11..13],
            &d[13..15]
        );
        assert_eq!(rfc3339_ms(&t), secs as i64 * 1000 + 42, "{t}");
    }
    assert_eq!(rfc3339_ms("2026-12-07T14:24:24Z"), 1_796_653_464_000);
}
