//! The harness's own S3 calls on the wire: SigV4 signing (as a real client
//! does: moto refuses anonymous reads and overwrites) and the few XML
//! elements the tests read from S3's answers.

use super::*;

/// One S3 request over a fresh connection (`Connection: close`), signed
/// with SigV4 (`UNSIGNED-PAYLOAD`) as `key` in us-east-1.
pub(super) fn signed_request(
    addr: SocketAddr,
    key: &Key,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let host = addr.to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let amz_date = amz_date(now);
    let payload = "UNSIGNED-PAYLOAD";
    let mut signed: Vec<(&str, &str)> = vec![
        ("host", &host),
        ("x-amz-content-sha256", payload),
        ("x-amz-date", &amz_date),
    ];
    signed.extend_from_slice(headers);
    let uri = uri_encode(path, false);
    let query = canonical_query(query);
    let authorization = sigv4(
        "s3",
        method,
        &uri,
        &query,
        &signed,
        payload,
        &amz_date,
        &key.id,
        &key.secret,
    );
    let target = if query.is_empty() {
        uri
    } else {
        format!("{uri}?{query}")
    };
    let mut all: Vec<(&str, &str)> = signed[1..].to_vec();
    all.push(("Authorization", &authorization));
    // moto reads a body sent as a form (curl's default type) as text, and
    // one that is not UTF-8 hangs the request; say what it is.
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/octet-stream"));
    }
    try_request(addr, method, &target, &all, body)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since 1970 (UTC): SigV4's date, and
/// ISO 8601's basic format, whose strings sort as their times do.
pub fn amz_date(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// SigV4's URI encoding: all but the unreserved characters, and `/` too
/// unless it separates a path's segments.
pub(super) fn uri_encode(s: &str, slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if !slash => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The query string, encoded and sorted: what is sent and what is signed.
pub(super) fn canonical_query(query: &[(&str, &str)]) -> String {
    let sorted: BTreeMap<String, String> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104).
pub(super) fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `Authorization` header of AWS Signature Version 4 for S3:
/// `uri` and `query` already canonical, every header in `headers` signed.
#[allow(clippy::too_many_arguments)]
pub(super) fn sigv4(
    service: &str,
    method: &str,
    uri: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    amz_date: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let canon: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let canonical_headers: String = canon.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = canon.keys().cloned().collect::<Vec<_>>().join(";");
    let request =
        format!("{method}\n{uri}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let day = &amz_date[..8];
    let scope = format!("{day}/{REGION}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), day.as_bytes());
    for part in [REGION, service, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// The insides of every `<tag>…</tag>` in `xml`, in order (not nested in
/// itself; S3's answers never are).
pub(super) fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The text of the first `<tag>` (entities decoded), `""` for `<tag/>`.
pub(super) fn element(xml: &str, tag: &str) -> Option<String> {
    let first = elements(xml, tag).into_iter().next().map(unescape);
    first.or_else(|| xml.contains(&format!("<{tag}/>")).then(String::new))
}

pub(super) fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
