use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;

use crate::common::{HTTPVersion, Method};
use crate::util::buf_writer::BufWriter;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    // video-recorder patch: our BufWriter (`util/buf_writer.rs`), which
    // passes a vectored write on to the socket; std's copied or split it.
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // video-recorder patch: see `with_head_timeout`.
    head_timeout: Option<std::time::Duration>,

    // video-recorder patch: set by a request's body when the rest of it
    // could not be skipped (`util::unread_body`): the connection then ends.
    unusable: crate::util::unread_body::Unusable,
    // video-recorder patch: the connection's place under the caps.
    slot: Option<std::sync::Arc<crate::util::conn_limits::Slot>>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    /// video-recorder patch: a request line longer than `MAX_REQUEST_LINE`.
    RequestLineTooLong,
    /// video-recorder patch: more header bytes than `MAX_HEADER_BYTES`.
    HeadersTooLarge,
    /// video-recorder patch: a byte outside ASCII in the request head.
    NotAscii,
    /// video-recorder patch: see `RequestCreationError::BadFraming`.
    BadFraming(&'static str),
    /// video-recorder patch: see `RequestCreationError::BodyTooLarge`.
    BodyTooLarge,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let slot = read_socket.slot();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            head_timeout: None,
            unusable: Default::default(),
            slot,
        }
    }

    /// video-recorder patch: a request's line and headers must arrive within
    /// `t` of its first byte (a client trickling a header in byte by byte
    /// would otherwise hold its thread for as long as it likes).
    pub(crate) fn with_head_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.head_timeout = t;
        self
    }

    /// video-recorder patch: after refusing a request that is still coming
    /// in, reads (and drops) a little more of it before closing. Closing a
    /// socket with unread input resets the connection, and the reset can
    /// destroy the refusal before the client reads it.
    fn linger(&mut self) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut left: usize = 256 * 1024;
        let mut buf = [0u8; 4096];
        while left > 0 && std::time::Instant::now() < until {
            match self.next_header_source.read(&mut buf[..left.min(4096)]) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n,
            }
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    // video-recorder patch: reads at most `limit` bytes (CRLF included);
    // `Ok(None)` when the line is longer. Upstream grew the line without
    // bound, so one client sending a header that never ends took all memory.
    fn read_next_line(
        &mut self,
        limit: usize,
        deadline: &mut Option<std::time::Instant>,
    ) -> IoResult<Option<AsciiString>> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            if buf.len() >= limit {
                return Ok(None);
            }
            match *deadline {
                Some(d) if std::time::Instant::now() > d => {
                    return Err(IoError::new(ErrorKind::TimedOut, "request head too slow"));
                }
                None if self.head_timeout.is_some() && !buf.is_empty() => {
                    *deadline = self.head_timeout.map(|t| std::time::Instant::now() + t);
                }
                _ => {}
            }
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b?,
                None => return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF")),
            };
            // video-recorder patch: the previous body was not skipped: what
            // arrives now is not the start of a request.
            if self.unusable.load(std::sync::atomic::Ordering::Acquire) {
                return Err(IoError::new(ErrorKind::ConnectionAborted, "unread body"));
            }

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf)
                    .map(Some)
                    .map_err(|_| IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"));
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // Set at the request's first byte (when `head_timeout` is set).
        let mut deadline = None;
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self
                    .read_next_line(MAX_REQUEST_LINE, &mut deadline)
                    .map_err(read_error)?
                    .ok_or(ReadError::RequestLineTooLong)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                let mut left = MAX_HEADER_BYTES;
                loop {
                    let line = self
                        .read_next_line(left, &mut deadline)
                        .map_err(read_error)?
                        .ok_or(ReadError::HeadersTooLarge)?;
                    left = left.saturating_sub(line.len() + 2);

                    if line.is_empty() {
                        break;
                    };
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // video-recorder patch: a connection that sent a request is in use,
        // no longer one the caps evict to make room.
        if let Some(slot) = &self.slot {
            slot.mark_used();
        }

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request_by(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
            deadline,
            Some(self.unusable.clone()),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::BadFraming(why) => ReadError::BadFraming(why),
                request::RequestCreationError::BodyTooLarge => ReadError::BodyTooLarge,
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                // video-recorder patch: JSON errors that say why, then close.
                Err(ReadError::WrongRequestLine) => {
                    refuse(self.sink.next().unwrap(), 400, "malformed request line");
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }
                Err(ReadError::NotAscii) => {
                    refuse(self.sink.next().unwrap(), 400, "request head is not ASCII");
                    return None;
                }
                Err(ReadError::BadFraming(why)) => {
                    refuse(self.sink.next().unwrap(), 400, why);
                    return None;
                }
                Err(ReadError::BodyTooLarge) => {
                    refuse(self.sink.next().unwrap(), 413, "body too large");
                    return None;
                }

                // video-recorder patch: refuse, say why (JSON, as every error
                // of the API), and close: the rest of the request is not read.
                Err(ReadError::RequestLineTooLong) => {
                    refuse(self.sink.next().unwrap(), 414, "request line too long");
                    self.linger();
                    return None;
                }
                Err(ReadError::HeadersTooLarge) => {
                    refuse(self.sink.next().unwrap(), 431, "request headers too large");
                    self.linger();
                    return None;
                }

                Err(ReadError::WrongHeader(_)) => {
                    refuse(self.sink.next().unwrap(), 400, "malformed header line");
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout (video-recorder patch: a JSON error)
                    refuse(self.sink.next().unwrap(), 408, "request too slow");
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            // video-recorder patch: answer and close. Upstream went on
            // reading, so an HTTP/2 client waited for the idle timeout.
            if *rq.http_version() > (1, 1) {
                refuse(
                    rq.into_writer(),
                    505,
                    "only HTTP/1.0 and HTTP/1.1 are served",
                );
                return None;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// video-recorder patch: a head that is not ASCII is a 400, not a silent close.
fn read_error(e: IoError) -> ReadError {
    if e.kind() == ErrorKind::InvalidInput {
        ReadError::NotAscii
    } else {
        ReadError::ReadIoError(e)
    }
}

/// video-recorder patch: longest request line read (method, URL, version).
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// video-recorder patch: most header bytes read for one request.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// video-recorder patch: a JSON error answer for a request we stopped reading.
fn refuse<W: std::io::Write>(writer: W, status: u16, message: &str) {
    use std::io::Write as _;
    use crate::{Header, Response, StatusCode};
    let body = format!("{{\"error\":\"{}\"}}", message);
    let mut response = Response::from_string(body).with_status_code(StatusCode(status));
    for (field, value) in [
        ("Content-Type", "application/json"),
        ("X-Content-Type-Options", "nosniff"),
        ("Connection", "close"),
    ] {
        if let Ok(h) = Header::from_bytes(field.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let mut writer = writer;
    response
        .raw_print(&mut writer, HTTPVersion(1, 1), &[], false, None)
        .ok();
    // Sent now, not when the connection is dropped (after a linger).
    writer.flush().ok();
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}

/// video-recorder patch: the writer a request hands out (`into_writer`)
/// passes a vectored write through every layer (sequencing, buffer, socket
/// halves) to the socket in one call. A layer with the default
/// `write_vectored` would take the first slice only.
#[cfg(test)]
mod vectored_write {
    use super::ClientConnection;
    use crate::connection::Connection;
    use crate::util::RefinedTcpStream;
    use std::io::{IoSlice, Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_response_writer_passes_a_vectored_write_to_the_socket_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (read, write) = RefinedTcpStream::new(Connection::from(server)).unwrap();
        let mut conn = ClientConnection::new(write, read);
        client
            .write_all(b"GET /video HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // As the server hands requests out: the writer then also tells the
        // connection's thread when it is dropped.
        let (sender, answered) = std::sync::mpsc::channel();
        let request = conn.next().expect("a request").with_notify_sender(sender);
        let mut out = request.into_writer();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            client.read_to_end(&mut all).unwrap();
            all
        });
        let head = b"Content-Type: image/jpeg\r\nContent-Length: 61440\r\n\r\n";
        let jpeg: Vec<u8> = (0..60 * 1024).map(|i| i as u8).collect();
        let tail = b"\r\n--frame\r\n";
        let parts = [IoSlice::new(head), IoSlice::new(&jpeg), IoSlice::new(tail)];
        let n = out.write_vectored(&parts).unwrap();
        // A blocking socket takes all of it (the reader drains the other end).
        assert_eq!(n, head.len() + jpeg.len() + tail.len());
        drop(out);
        answered.recv().unwrap();
        drop(conn);
        let all = reader.join().unwrap();
        assert_eq!(all, [&head[..], &jpeg, &tail[..]].concat());
    }
}
