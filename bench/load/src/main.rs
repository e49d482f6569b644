//! vr-load: opens N `/video` viewers at the same instant, reads every part by
//! Content-Length, and reports per-viewer fps, latency from `X-Timestamp`
//! (capture wall time to receipt of the whole part), and the server's CPU
//! time per delivered frame and memory from /proc/PID.
//!
//! It also reads µStreamer's `/stream`. µStreamer's `X-Timestamp` is not a
//! capture time: it is the wall clock when the part was queued for that
//! viewer. With `/stream?extra_headers=1` µStreamer adds
//! `X-UStreamer-Grab-Time`, CLOCK_MONOTONIC_RAW when it dequeued the frame;
//! where a part has it, latency is measured from it on the same clock
//! (client and server share the machine), and the `X-Timestamp` latency is
//! reported beside it.
//!
//! One thread per viewer, blocking reads: on 2 cores this costs less than an
//! interpreter's event loop, so the client limits the result less.
//!
//! Usage: vr-load --addr 127.0.0.1:8000 --viewers 200 [--path /video]
//!        [--warmup 3] [--duration 10] [--pid SERVER_PID] [--ramp 0]
//! `--ramp S` spreads the connects evenly over S seconds instead of all at
//! the same instant (the window still starts --warmup after the first).
//! Prints one JSON object on stdout and a summary on stderr.

mod parts;
mod procfs;
mod report;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use report::{Cpu, report};

struct Args {
    addr: SocketAddr,
    path: String,
    viewers: usize,
    warmup: Duration,
    duration: Duration,
    ramp: Duration,
    pid: Option<u32>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:8000".parse().unwrap(),
        path: "/video".into(),
        viewers: 1,
        warmup: Duration::from_secs(3),
        duration: Duration::from_secs(10),
        ramp: Duration::ZERO,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--addr" => {
                let v = val()?;
                a.addr = v
                    .to_socket_addrs()
                    .map_err(|e| format!("--addr {v}: {e}"))?
                    .next()
                    .ok_or(format!("--addr {v}: no address"))?;
            }
            "--path" => a.path = val()?,
            "--viewers" => a.viewers = val()?.parse().map_err(|_| "--viewers: not a number")?,
            "--warmup" => a.warmup = secs(val()?)?,
            "--duration" => a.duration = secs(val()?)?,
            "--ramp" => a.ramp = secs(val()?)?,
            "--pid" => a.pid = Some(val()?.parse().map_err(|_| "--pid: not a number")?),
            "-h" | "--help" => {
                return Err(
                    "usage: vr-load --addr HOST:PORT --viewers N [--path /video] \
                            [--warmup S] [--duration S] [--pid PID] [--ramp S]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    if a.viewers == 0 || a.duration.is_zero() {
        return Err("--viewers and --duration must be positive".into());
    }
    if a.ramp >= a.warmup {
        return Err("--ramp must be shorter than --warmup".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Viewer {
    /// HTTP status, 0 when the connection failed.
    status: u16,
    error: Option<String>,
    connect_ms: f64,
    /// From connected to the whole response head.
    head_ms: f64,
    /// From the common start instant to the first whole part.
    first_part_ms: Option<f64>,
    frames: u64,
    bytes: u64,
    /// Capture to receipt: from `X-UStreamer-Grab-Time` where the part has
    /// it, else from `X-Timestamp`.
    latencies_ms: Vec<f32>,
    /// From `X-Timestamp` to receipt, whatever the server means by it.
    stamp_latencies_ms: Vec<f32>,
    /// Parts timed from `X-UStreamer-Grab-Time`.
    grab_timed: u64,
}

struct Window {
    start: Instant,
    from: Instant,
    to: Instant,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// CLOCK_MONOTONIC_RAW in seconds, the clock of µStreamer's grab times.
fn monotonic_raw() -> f64 {
    #[repr(C)]
    struct Timespec {
        tv_sec: std::ffi::c_long,
        tv_nsec: std::ffi::c_long,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_MONOTONIC_RAW: i32 = 4;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    if unsafe { clock_gettime(CLOCK_MONOTONIC_RAW, &mut ts) } != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn view(addr: SocketAddr, path: &str, w: &Window) -> Viewer {
    let mut v = Viewer::default();
    let t = Instant::now();
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(20)) {
        Ok(s) => s,
        Err(e) => {
            v.error = Some(format!("connect: {e}"));
            return v;
        }
    };
    v.connect_ms = t.elapsed().as_secs_f64() * 1e3;
    // A slow answer is measured (head_ms), not mistaken for a lost one.
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    if let Err(e) = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n") {
        v.error = Some(format!("send request: {e}"));
        return v;
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let body_start = loop {
        match s.read(&mut buf) {
            Ok(0) => {
                v.error = Some("closed before the response head".into());
                return v;
            }
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => {
                v.error = Some(format!("read head: {e}"));
                return v;
            }
        }
        if let Some(end) = parts::find(&head, b"\r\n\r\n") {
            break end + 4;
        }
    };
    v.head_ms = t.elapsed().as_secs_f64() * 1e3 - v.connect_ms;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let head_text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    v.status = head_text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if v.status != 200 {
        return v;
    }
    if head_text.contains("transfer-encoding: chunked") {
        v.error = Some("chunked stream: this client reads raw multipart only".into());
        return v;
    }
    let mut parser = parts::Parser::default();
    let mut leftover = head[body_start..].to_vec();
    loop {
        let left = parser.body_left();
        let got = if !leftover.is_empty() {
            let n = leftover.len();
            buf[..n].copy_from_slice(&leftover);
            leftover.clear();
            Ok(n)
        } else if left > 0 {
            discard(&s, &mut buf, left)
        } else {
            // Headers and the boundary are short: read little, so a body
            // is rarely copied into user space.
            s.read(&mut buf[..512])
        };
        let n = match got {
            Ok(0) => {
                v.error = Some("server closed the stream".into());
                return v;
            }
            Ok(n) => n,
            Err(e) => {
                v.error = Some(format!("read: {e}"));
                return v;
            }
        };
        let now = Instant::now();
        if now >= w.to {
            break;
        }
        let in_window = now >= w.from;
        let mut bad = None;
        let on_part = |p: parts::PartInfo| {
            if v.first_part_ms.is_none() {
                v.first_part_ms = Some(w.start.elapsed().as_secs_f64() * 1e3);
            }
            if in_window {
                v.frames += 1;
                v.bytes += p.len as u64;
                if p.timestamp.is_finite() {
                    let ms = ((now_unix() - p.timestamp) * 1e3) as f32;
                    v.stamp_latencies_ms.push(ms);
                    if p.grab_raw.is_finite() {
                        v.latencies_ms
                            .push(((monotonic_raw() - p.grab_raw) * 1e3) as f32);
                        v.grab_timed += 1;
                    } else {
                        v.latencies_ms.push(ms);
                    }
                } else {
                    bad = Some("part without X-Timestamp");
                }
            }
        };
        if left > 0 && n <= left {
            parser.skip_body(n, on_part);
        } else if let Err(e) = parser.feed(&buf[..n], on_part) {
            v.error = Some(e);
            return v;
        }
        if let Some(b) = bad {
            v.error = Some(b.into());
        }
    }
    v
}

/// Receives up to `max` bytes and throws them away inside the kernel
/// (`MSG_TRUNC` on TCP), so the client does not pay a copy per frame and
/// leaves the CPU to the server. `scratch` bounds the call even if a kernel
/// copied anyway.
fn discard(s: &TcpStream, scratch: &mut [u8], max: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn recv(fd: i32, buf: *mut u8, len: usize, flags: i32) -> isize;
    }
    const MSG_TRUNC: i32 = 0x20;
    let len = max.min(scratch.len());
    // SAFETY: recv into a buffer we own, of at least `len` bytes.
    let n = unsafe { recv(s.as_raw_fd(), scratch.as_mut_ptr(), len, MSG_TRUNC) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vr-load: {e}");
            std::process::exit(2);
        }
    };
    if let Some(limit) = procfs::open_files_limit()
        && limit < args.viewers as u64 + 32
    {
        eprintln!(
            "vr-load: open files limit {limit} is too low for {} viewers: run `ulimit -n 65536` first",
            args.viewers
        );
        std::process::exit(2);
    }
    let barrier = Arc::new(Barrier::new(args.viewers + 1));
    let window: Arc<OnceLock<Window>> = Arc::new(OnceLock::new());
    let mut handles = Vec::with_capacity(args.viewers);
    for i in 0..args.viewers {
        let (barrier, window, path, addr) = (
            barrier.clone(),
            window.clone(),
            args.path.clone(),
            args.addr,
        );
        // Viewer i's connect, after the common start instant.
        let delay = args.ramp.mul_f64(i as f64 / args.viewers as f64);
        let h = std::thread::Builder::new()
            .name(format!("viewer-{i}"))
            .stack_size(128 * 1024)
            .spawn(move || {
                barrier.wait();
                let w = window.get().expect("window set before release");
                if !delay.is_zero() {
                    std::thread::sleep((w.start + delay).saturating_duration_since(Instant::now()));
                }
                view(addr, &path, w)
            })
            .unwrap_or_else(|e| {
                eprintln!("vr-load: cannot start viewer thread {i}: {e}");
                std::process::exit(1)
            });
        handles.push(h);
    }
    // Every viewer connects the moment the barrier opens.
    let start = Instant::now();
    let w = Window {
        start,
        from: start + args.warmup,
        to: start + args.warmup + args.duration,
    };
    let (from, to) = (w.from, w.to);
    let _ = window.set(w);
    barrier.wait();

    std::thread::sleep(from.saturating_duration_since(Instant::now()));
    let me = std::process::id();
    let cpu0 = args.pid.map(procfs::cpu_seconds).transpose();
    let sched0 = args.pid.map(procfs::thread_cpu_ns);
    let own0 = procfs::cpu_seconds(me).unwrap_or(0.0);
    let machine0 = procfs::machine_cpu();
    let t0 = Instant::now();
    std::thread::sleep(to.saturating_duration_since(Instant::now()));
    let cpu1 = args.pid.map(procfs::cpu_seconds).transpose();
    let sched1 = args.pid.map(procfs::thread_cpu_ns);
    let own1 = procfs::cpu_seconds(me).unwrap_or(0.0);
    let machine1 = procfs::machine_cpu();
    let secs = t0.elapsed().as_secs_f64();
    let mem = args.pid.map(procfs::memory_kib).transpose();
    let server_threads = args.pid.map(procfs::threads);

    let viewers: Vec<Viewer> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    let sched_cpu = match (&sched0, &sched1) {
        (Some(a), Some(b)) if !b.is_empty() => procfs::thread_cpu_delta(a, b),
        _ => f64::NAN,
    };
    let cpu = Cpu {
        before: cpu0,
        after: cpu1,
        threads: sched_cpu,
        client: own1 - own0,
        machine: match (machine0, machine1) {
            (Some(a), Some(b)) => (b.0 - a.0, b.1 - a.1),
            _ => (f64::NAN, f64::NAN),
        },
    };
    report(&args, &viewers, secs, cpu, mem, server_threads);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_raw_runs_forward() {
        let a = monotonic_raw();
        std::thread::sleep(Duration::from_millis(20));
        let b = monotonic_raw();
        assert!(a > 0.0 && (0.015..1.0).contains(&(b - a)), "{a} then {b}");
    }

    #[test]
    fn discard_drops_exactly_what_it_says() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let w = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(&vec![7u8; 300_000]).unwrap();
            c.write_all(b"END").unwrap();
        });
        let mut s = TcpStream::connect(addr).unwrap();
        let mut scratch = vec![0u8; 64 * 1024];
        let mut dropped = 0;
        while dropped < 300_000 {
            let n = discard(&s, &mut scratch, 300_000 - dropped).unwrap();
            assert!(n > 0);
            dropped += n;
        }
        assert_eq!(dropped, 300_000);
        let mut end = Vec::new();
        s.read_to_end(&mut end).unwrap();
        assert_eq!(end, b"END");
        w.join().unwrap();
    }
}
