use super::*;
use md5::Md5;

const BUCKET: &str = "vr-test-bucket";

fn md5_hex(b: &[u8]) -> String {
    hex(&Md5::digest(b))
}

/// Bytes that differ from one place to the next.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn put(s3: &S3Server, key: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
    s3.call("PUT", &format!("/{BUCKET}/{key}"), &[], headers, body)
}

#[test]
fn hmac_sha256_vectors() {
    // RFC 4231, test cases 1, 2 and 6 (a key longer than a block).
    assert_eq!(
        hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

/// AWS's own example (S3 GetObject, "Authenticating Requests: Using
/// the Authorization Header", the first of the examples).
#[test]
fn sigv4_is_the_one_in_the_aws_example() {
    let empty = hex(&Sha256::digest(b""));
    let auth = sigv4(
        "s3",
        "GET",
        "/test.txt",
        "",
        &[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", &empty),
            ("x-amz-date", "20130524T000000Z"),
        ],
        &empty,
        "20130524T000000Z",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
         SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn dates_and_encodings() {
    assert_eq!(amz_date(0), "19700101T000000Z");
    assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
    assert_eq!(amz_date(951_782_400 + 86_399), "20000229T235959Z");
    assert_eq!(amz_date(4_102_444_800 - 1), "20991231T235959Z");
    assert_eq!(uri_encode("/b/a b+c/é~", false), "/b/a%20b%2Bc/%C3%A9~");
    assert_eq!(
        canonical_query(&[("uploads", ""), ("max-uploads", "1"), ("key-marker", "a/b")]),
        "key-marker=a%2Fb&max-uploads=1&uploads="
    );
    let xml = "<R><IsTruncated>false</IsTruncated><Prefix/><Contents><Key>a&amp;b</Key>\
               <Size>3</Size></Contents><Contents><Key>c</Key><Size>4</Size></Contents></R>";
    assert_eq!(elements(xml, "Contents").len(), 2);
    assert_eq!(element(xml, "Key").as_deref(), Some("a&b"));
    assert_eq!(element(xml, "Prefix").as_deref(), Some(""));
    assert_eq!(element(xml, "Nope"), None);
}

/// A bucket, objects in it listed, read and looked at; what moto does
/// with `If-None-Match: *` and with unsigned requests; and back on the
/// same port, empty.
#[test]
fn objects_listed_read_and_gone_after_a_restart() {
    let t0 = Instant::now();
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    eprintln!("moto answering after {:?}", t0.elapsed());
    assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{}", s3.port()));
    s3.create_bucket(BUCKET);
    assert!(s3.list(BUCKET).is_empty());
    let (a, b) = (pattern(3000, 1), pattern(17, 2));
    for (key, body) in [("cam/2026-01-02/a.mp4", &a), ("cam/b.json", &b)] {
        let r = put(&s3, key, body, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        // A single PUT's ETag is its body's MD5.
        let etag = r.header("ETag").unwrap().trim_matches('"').to_string();
        assert_eq!(etag, md5_hex(body));
    }
    let want = vec![
        ("cam/2026-01-02/a.mp4".to_string(), 3000),
        ("cam/b.json".to_string(), 17),
    ];
    assert_eq!(s3.list(BUCKET), want);
    assert_eq!(s3.list_paged(BUCKET, 1), want, "one key a page");
    assert_eq!(s3.get(BUCKET, "cam/2026-01-02/a.mp4").unwrap(), a);
    assert_eq!(
        s3.head(BUCKET, "cam/2026-01-02/a.mp4"),
        Some((3000, md5_hex(&a)))
    );
    assert_eq!(s3.get(BUCKET, "cam/nope.mp4"), None);
    assert_eq!(s3.head(BUCKET, "cam/nope.mp4"), None);

    // If-None-Match: * is honoured: no overwrite.
    let again = put(&s3, "cam/b.json", &a, &[("If-None-Match", "*")]);
    assert_eq!(again.status, 412, "{}", again.text());
    assert!(
        again.text().contains("PreconditionFailed"),
        "{}",
        again.text()
    );
    assert_eq!(s3.get(BUCKET, "cam/b.json").unwrap(), b);
    let new = put(&s3, "cam/c.json", &b, &[("If-None-Match", "*")]);
    assert_eq!(new.status, 200, "{}", new.text());

    // Without an Authorization header moto takes a request as anonymous:
    // an existing object is then forbidden (a missing one is a 404).
    let anon = |m, k: &str| try_request(s3.addr(), m, &format!("/{BUCKET}/{k}"), &[], b"");
    assert_eq!(anon("GET", "cam/b.json").unwrap().status, 403);
    assert_eq!(anon("GET", "cam/nope.json").unwrap().status, 404);

    let port = s3.port();
    s3.stop();
    assert!(!s3.running());
    assert!(try_request(s3.addr(), "GET", "/", &[], b"").is_err());
    // Someone else on the port until moto has found it busy: the
    // restart waits it out.
    let squatter = TcpListener::bind(s3.addr()).unwrap();
    let log = s3.log.path().to_path_buf();
    let held = std::thread::spawn(move || {
        let deadline = Instant::now() + READY_TIMEOUT;
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("already in use")) {
            assert!(Instant::now() < deadline, "moto never found the port busy");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(squatter);
    });
    let t1 = Instant::now();
    s3.restart();
    eprintln!("restarted after {:?} (once busy)", t1.elapsed());
    held.join().unwrap();
    assert_eq!(s3.port(), port);
    assert!(s3.running());
    let r = s3.call(
        "GET",
        &format!("/{BUCKET}"),
        &[("list-type", "2")],
        &[],
        b"",
    );
    assert_eq!(r.status, 404, "the bucket is gone: {}", r.text());
    assert!(r.text().contains("NoSuchBucket"), "{}", r.text());
    s3.create_bucket(BUCKET);
    assert!(s3.list(BUCKET).is_empty());
}

/// Begins an upload of `parts` and returns its id and the parts' ETags.
fn upload_parts(s3: &S3Server, key: &str, parts: &[Vec<u8>]) -> (String, Vec<String>) {
    let path = format!("/{BUCKET}/{key}");
    let r = s3.call("POST", &path, &[("uploads", "")], &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = element(&r.text(), "UploadId").unwrap();
    let etags = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = (i + 1).to_string();
            let q = [("partNumber", n.as_str()), ("uploadId", id.as_str())];
            let r = s3.call("PUT", &path, &q, &[], p);
            assert_eq!(r.status, 200, "part {n}: {}", r.text());
            r.header("ETag").unwrap().to_string()
        })
        .collect();
    (id, etags)
}

fn complete(s3: &S3Server, key: &str, id: &str, etags: &[String]) -> Response {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, e) in etags.iter().enumerate() {
        let e = e.replace('"', "&quot;");
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let q = [("uploadId", id)];
    let h = [("Content-Type", "application/xml")];
    s3.call("POST", &format!("/{BUCKET}/{key}"), &q, &h, xml.as_bytes())
}

/// Uploads in progress and their parts are listed (over pages); parts
/// under 5 MiB complete only with `S3_UPLOAD_PART_MIN_SIZE` lowered, and
/// the object's ETag is the MD5 of the parts' MD5s, then `-<parts>`.
#[test]
fn multipart_uploads_and_their_parts() {
    let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    assert!(s3.multipart_uploads(BUCKET).is_empty());
    let parts = vec![pattern(2048, 1), pattern(2048, 2), pattern(100, 3)];
    let key = "cam/2026-01-02/m.mp4";
    let (id, etags) = upload_parts(&s3, key, &parts);
    let (other, _) = upload_parts(&s3, "cam/z.mp4", &parts[..1]);
    let mut uploads = vec![(key.to_string(), id.clone()), ("cam/z.mp4".into(), other)];
    uploads.sort();
    let mut listed = s3.multipart_uploads(BUCKET);
    listed.sort();
    assert_eq!(listed, uploads);
    let mut paged = s3.multipart_uploads_paged(BUCKET, 1);
    paged.sort();
    assert_eq!(paged, uploads, "one upload a page");
    let want = vec![(1, 2048), (2, 2048), (3, 100)];
    assert_eq!(s3.parts(BUCKET, key, &id), want);
    assert_eq!(s3.parts_paged(BUCKET, key, &id, 1), want, "one part a page");

    let r = complete(&s3, key, &id, &etags);
    assert_eq!(r.status, 200, "{}", r.text());
    let md5s: Vec<u8> = parts.iter().flat_map(|p| Md5::digest(p).to_vec()).collect();
    let etag = format!("{}-3", md5_hex(&md5s));
    let (size, got) = s3.head(BUCKET, key).unwrap();
    assert_eq!((size, got), (4196, etag));
    assert_eq!(s3.get(BUCKET, key).unwrap(), parts.concat());
    assert_eq!(s3.multipart_uploads(BUCKET).len(), 1, "the other is open");

    // moto's own minimum (5 MiB, as AWS), checked at completion only.
    let Some(strict) = S3Server::start() else {
        return;
    };
    strict.create_bucket(BUCKET);
    let (id, etags) = upload_parts(&strict, key, &parts);
    assert_eq!(strict.parts(BUCKET, key, &id).len(), 3);
    let r = complete(&strict, key, &id, &etags);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("EntityTooSmall"), "{}", r.text());
}

/// Through the proxy to moto: the first PUT is stored with one byte
/// changed (and its ETag says so), the next one as sent, and a GET
/// comes back unchanged.
#[test]
fn the_proxy_damages_the_first_put_only() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let proxy = CorruptingProxy::start(s3.addr(), 1);
    assert_eq!(proxy.endpoint(), format!("http://{}", proxy.addr()));
    let body = pattern(5000, 7);
    let via = |m, key: &str, b: &[u8]| {
        signed_request(
            proxy.addr(),
            &s3.key,
            m,
            &format!("/{BUCKET}/{key}"),
            &[],
            &[],
            b,
        )
        .unwrap()
    };
    let first = via("PUT", "one.mp4", &body);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(proxy.corrupted(), 1);
    let stored = s3.get(BUCKET, "one.mp4").unwrap();
    assert_eq!(stored.len(), body.len());
    let diff: Vec<usize> = (0..body.len()).filter(|&i| stored[i] != body[i]).collect();
    assert_eq!(diff, [CORRUPT_AT]);
    let etag = first.header("ETag").unwrap().trim_matches('"');
    assert_eq!(etag, md5_hex(&stored));
    assert_ne!(etag, md5_hex(&body), "the ETag tells");

    let second = via("PUT", "two.mp4", &body);
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(proxy.corrupted(), 1);
    assert_eq!(s3.get(BUCKET, "two.mp4").unwrap(), body);
    let got = via("GET", "two.mp4", b"");
    assert_eq!((got.status, got.body), (200, body));
}

/// What a stand-in upstream got: method and body, request by request.
type Seen = Vec<(String, Vec<u8>)>;

/// A stand-in upstream on keep-alive: reads requests one after another
/// on one connection (a `Content-Length` body, or a chunked one up to
/// its last chunk), answers each, and hands back (method, body as sent).
fn keep_alive_upstream(requests: usize) -> (SocketAddr, std::sync::mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut out = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        let mut got = Vec::new();
        for _ in 0..requests {
            let mut lines = Vec::new();
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if l == "\r\n" {
                    break;
                }
                lines.push(l.trim_end().to_string());
            }
            let method = lines[0].split(' ').next().unwrap().to_string();
            let len = lines
                .iter()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(|v| v.parse().unwrap());
            let mut body = Vec::new();
            match len {
                Some(n) => {
                    body.resize(n, 0);
                    r.read_exact(&mut body).unwrap();
                }
                None => {
                    while !body.ends_with(b"\r\n0\r\n\r\n") {
                        r.read_until(b'\n', &mut body).unwrap();
                    }
                }
            }
            got.push((method, body));
            out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
        }
        tx.send(got).unwrap();
    });
    (addr, rx)
}

/// Several requests on one connection: only the first two PUTs' bodies
/// change, each in one byte (the last of a short one); a chunked PUT
/// passes as sent and is not counted.
#[test]
fn the_proxy_follows_requests_on_one_connection() {
    let (up, rx) = keep_alive_upstream(4);
    let proxy = CorruptingProxy::start(up, 2);
    let (long, short) = (pattern(300, 1), pattern(50, 2));
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head =
        |m: &str, n: usize| format!("{m} /x HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n");
    let mut sent = Vec::new();
    for (m, b) in [
        ("POST", &long),
        ("PUT", &short),
        ("PUT", &long),
        ("PUT", &long),
    ] {
        sent.extend_from_slice(head(m, b.len()).as_bytes());
        sent.extend_from_slice(b);
    }
    c.write_all(&sent).unwrap();
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut back = vec![0; answer.len() * 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, answer.repeat(4));
    assert_eq!(proxy.corrupted(), 2);

    c.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let flipped = |b: &[u8], at: usize| {
        let mut v = b.to_vec();
        v[at] ^= 0xff;
        v
    };
    let want = vec![
        ("POST".to_string(), long.clone()),
        ("PUT".to_string(), flipped(&short, short.len() - 1)),
        ("PUT".to_string(), flipped(&long, CORRUPT_AT)),
        ("PUT".to_string(), long.clone()),
    ];
    assert_eq!(got, want);

    // A chunked PUT, with damage still to do: passed on as it is.
    let (up, rx) = keep_alive_upstream(1);
    let proxy = CorruptingProxy::start(up, 1);
    let mut body = b"c8\r\n".to_vec();
    body.extend_from_slice(&pattern(200, 3));
    body.extend_from_slice(b"\r\n0\r\n\r\n");
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(b"PUT /y HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    c.write_all(&body).unwrap();
    let mut one = vec![0; answer.len()];
    c.read_exact(&mut one).unwrap();
    assert_eq!(one, answer);
    c.shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(got, vec![("PUT".to_string(), body)]);
    assert_eq!(proxy.corrupted(), 0, "a chunked body is not counted");
}
