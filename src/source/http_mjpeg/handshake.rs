//! Asking the camera for its stream: the GET, same-host redirects, one
//! authentication challenge, and the checks that the answer is an MJPEG
//! stream, all by the open deadline and within the head's budget.

use std::time::{Duration, Instant};

use super::auth::Auth;
use super::conn::{Conn, Got};
use super::head::{self, Head};
use super::multipart::printable;
use super::url::Url;
use super::{MAX_REDIRECTS, Options};

/// Sends the GET, following same-host redirects and answering one
/// authentication challenge (two if the camera says the nonce was stale),
/// until a 2xx answer: its connection, head and the body bytes read with it.
pub fn request(
    mut target: Url,
    deadline: Instant,
    opts: &Options,
) -> Result<(Conn, Head, Vec<u8>), String> {
    let mut redirects = 0;
    let mut auth: Option<Auth> = None;
    let mut challenges = 0;
    loop {
        let mut conn = Conn::connect(&target, deadline, opts.tls.as_ref())?;
        let authorization = match (&mut auth, &target.credentials) {
            (Some(a), Some((user, pass))) => Some(a.authorization(user, pass, &target.target)),
            _ => None,
        };
        let req = head::request(
            &target.target,
            &target.host_header(),
            authorization.as_deref(),
        );
        conn.write_by(&req, deadline)?;
        let (head, rest) = read_head(&mut conn, deadline, opts)?;
        match head.status {
            200..=299 => return Ok((conn, head, rest)),
            301 | 302 | 303 | 307 | 308 => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                let location = head.get("location").ok_or_else(|| {
                    format!(
                        "the camera answered {} without a Location",
                        head.status_text()
                    )
                })?;
                target = target.redirect(location)?;
            }
            401 => {
                if target.credentials.is_none() {
                    return Err(
                        "the camera wants a user name and password: put them in the URL, \
                                as http://user:password@host/path"
                            .into(),
                    );
                }
                let stale = head.all("www-authenticate").any(|v| {
                    let v = v.to_ascii_lowercase().replace(['"', ' '], "");
                    v.contains("stale=true")
                });
                if let Some(a) = &auth
                    && (!stale || challenges >= 2)
                {
                    return Err(format!(
                        "the camera refused the user name and password ({} authentication, 401 \
                         Unauthorized)",
                        a.scheme()
                    ));
                }
                challenges += 1;
                auth = Some(Auth::choose(head.all("www-authenticate"))?);
            }
            _ => {
                return Err(format!(
                    "the camera answered {}{}",
                    head.status_text(),
                    hint(head.status)
                ));
            }
        }
    }
}

/// What a failure status usually means with cameras.
fn hint(status: u16) -> &'static str {
    match status {
        404 => " (is the path that of its MJPEG stream?)",
        403 => " (does this user have the right to view the stream?)",
        503 => " (busy? many cameras serve one or two streams at a time)",
        _ => "",
    }
}

/// Reads the answer's head by `deadline`: it and the bytes after it.
fn read_head(
    conn: &mut Conn,
    deadline: Instant,
    opts: &Options,
) -> Result<(Head, Vec<u8>), String> {
    let (max, budget): (usize, Duration) = (opts.budget.head_bytes, opts.open_timeout);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head::head_end(&buf).filter(|&e| e <= max) {
            let h = head::parse_head(&buf[..end])?;
            buf.drain(..end);
            // 1xx: an interim answer, the real one follows.
            if (100..200).contains(&h.status) {
                continue;
            }
            return Ok((h, buf));
        }
        if buf.len() > max {
            return Err(format!(
                "the answer's head is longer than {} KiB",
                max / 1024
            ));
        }
        match conn.read_by(&mut chunk, deadline)? {
            Got::Bytes(n) => buf.extend_from_slice(&chunk[..n]),
            Got::TimedOut => {
                return Err(format!(
                    "connected, but no answer within {:.1} s",
                    budget.as_secs_f64()
                ));
            }
            Got::Eof if buf.is_empty() => {
                return Err("the camera closed the connection without answering".into());
            }
            Got::Eof => return Err("the camera closed the connection in mid-answer".into()),
        }
    }
}

/// The boundary of a `multipart/x-mixed-replace` answer, or why the answer
/// is not an MJPEG stream.
pub fn boundary(head: &Head) -> Result<String, String> {
    let Some(value) = head.get("content-type") else {
        return Err("the answer has no Content-Type; expected an MJPEG stream \
                    (multipart/x-mixed-replace)"
            .into());
    };
    let (kind, params) = head::media_type(value);
    match kind.as_str() {
        "multipart/x-mixed-replace" | "multipart/mixed" => {}
        "image/jpeg" | "image/jpg" => {
            return Err(
                "the URL gives a single JPEG (a snapshot), not a stream: give the \
                        camera's MJPEG stream URL (often /stream, /video or /mjpg/video.mjpg)"
                    .into(),
            );
        }
        "text/html" => {
            return Err(
                "the URL gives a web page, not an MJPEG stream: give the camera's \
                        stream URL"
                    .into(),
            );
        }
        _ => {
            return Err(format!(
                "the answer is {:?}, not an MJPEG stream (multipart/x-mixed-replace)",
                printable(value)
            ));
        }
    }
    match params.into_iter().find(|(k, _)| k == "boundary") {
        Some((_, b)) if !b.is_empty() && b.len() <= 200 => Ok(b),
        _ => Err(format!(
            "the answer {:?} gives no usable boundary parameter",
            printable(value)
        )),
    }
}
