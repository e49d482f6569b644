//! The cheap RTSP camera (`vr_harness::rtsp_cheap`) as a process, for
//! `bench/`: `cheap-camera [--port P] [--sdp no-sprop|no-fmtp|trailing]
//! [--tcp] [--timeout SECS]`. Says `READY <port>` on stdout once it
//! listens, then serves until killed (a kill is the camera dropping).

use vr_harness::rtsp_cheap::{CheapCamera, CheapOptions, Sdp};

fn main() {
    let mut opts = CheapOptions::default();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--port" => port = value().parse().unwrap_or_else(|_| fail("--port: a number")),
            "--timeout" => {
                opts.timeout_sec = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--timeout: seconds"))
            }
            "--tcp" => opts.udp_only = false,
            "--sdp" => {
                opts.sdp = match value().as_str() {
                    "no-sprop" => Sdp::NoSprop,
                    "no-fmtp" => Sdp::NoFmtp,
                    "trailing" => Sdp::TrailingSemicolon,
                    other => fail(&format!("--sdp {other}: no-sprop, no-fmtp or trailing")),
                }
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let Some(cam) = CheapCamera::start_on(port, opts) else {
        fail("cannot make the camera's stream (ffmpeg with libx264)");
    };
    println!("READY {}", cam.port());
    loop {
        std::thread::park();
    }
}

fn fail(why: &str) -> ! {
    eprintln!("cheap-camera: {why}");
    std::process::exit(2);
}
