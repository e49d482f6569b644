//! Child processes with deadlines, and small file-system helpers.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The names in a directory, sorted (none if it does not exist).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Longest a child process of a test may run before it is killed and the
/// test fails: a hung tool must not hang the suite. Tools that take
/// seconds (ffprobe, ffmpeg on a test input, e2fsck, our `probe`) get this;
/// a hang costs three minutes, not ten.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// The same for children that do real work for minutes on a busy machine:
/// a fuzzing run, `make` building or deploying.
pub const LONG_CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// `output()` and `status()` with a deadline: the child is killed, and the
/// test fails with what it printed, when it runs past `limit`.
pub trait RunWithin {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output>;
    /// `output_within` with `input` on the child's stdin (then closed).
    fn fed_output_within(
        &mut self,
        input: &[u8],
        limit: Duration,
    ) -> std::io::Result<std::process::Output>;
    fn status_within(&mut self, limit: Duration) -> std::io::Result<std::process::ExitStatus>;
}

impl RunWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output> {
        self.stdin(Stdio::null());
        run_within(self, None, limit)
    }

    fn fed_output_within(
        &mut self,
        input: &[u8],
        limit: Duration,
    ) -> std::io::Result<std::process::Output> {
        self.stdin(Stdio::piped());
        run_within(self, Some(input.to_vec()), limit)
    }

    fn status_within(&mut self, limit: Duration) -> std::io::Result<std::process::ExitStatus> {
        let mut child = self.spawn()?;
        match wait_timeout(&mut child, limit) {
            Some(st) => Ok(st),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{:?} ran past {limit:?}; killed", self.get_program());
            }
        }
    }
}

/// Runs `cmd` (its stdin already chosen) with its output collected and
/// `input` written from a thread of its own, so a child that does not read
/// it cannot block us; killed (and the test failed) past `limit`.
fn run_within(
    cmd: &mut Command,
    input: Option<Vec<u8>>,
    limit: Duration,
) -> std::io::Result<std::process::Output> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let feeder = input.zip(child.stdin.take()).map(|(bytes, mut stdin)| {
        std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&bytes);
        })
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = match wait_timeout(&mut child, limit) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (out.join().unwrap(), err.join().unwrap());
            panic!(
                "{:?} ran past {limit:?}; killed. stdout:\n{}\nstderr:\n{}",
                cmd.get_program(),
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    })
}

pub(crate) fn unsafe_kill(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a server restarted on the same port may find it still busy.
pub const BIND_RETRY: Duration = Duration::from_secs(10);

/// Calls `launch` until it does not find its port busy (`None`), for at
/// most [`BIND_RETRY`]; `None` if it still is.
pub fn while_port_busy<T>(mut launch: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        if let Some(up) = launch() {
            return Some(up);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
