//! The web page in a real browser: Debian's headless Chromium driven by
//! playwright-core runs `tests/browser/ui.mjs` against the real binary (live
//! frames, test banner, Start, REC and a growing elapsed time, Stop, the
//! last clip playing, an API error shown, the phone layout, no console
//! errors).
//!
//! The screenshot goes to `$CARGO_TARGET_TMPDIR/screenshot.png`; with
//! `UPDATE_SCREENSHOT=1` it also replaces `docs/screenshot.png` (the one in
//! the README), so ordinary test runs leave the tree clean.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, have_tool, wait_timeout};

/// The script has its own 180 s guard; this one catches a hung node.
const NODE_TIMEOUT: Duration = Duration::from_secs(240);

fn require_tools() -> bool {
    std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Installs playwright-core from the lock file when it is missing. Returns
/// false (skip) when that cannot be done outside CI.
fn ensure_node_modules(dir: &Path) -> bool {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return true;
    }
    if !have_tool("npm") {
        return false;
    }
    eprintln!("installing playwright-core: npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => true,
        other => {
            let why = format!(
                "`npm ci` in {} failed ({other:?}); run it by hand to install playwright-core",
                dir.display()
            );
            if require_tools() {
                panic!("{why} (CI_REQUIRE_TOOLS=1)");
            }
            eprintln!("SKIP: {why}");
            false
        }
    }
}

#[test]
fn web_page_in_headless_chromium() {
    if !have_tool("chromium") || !have_tool("node") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("tests/browser");
    if !ensure_node_modules(&dir) {
        return;
    }

    let server = Server::start(&[
        "--source", "test", "--width", "640", "--height", "360", "--fps", "15",
    ]);
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let screenshot = out_dir.join("screenshot.png");
    let stdout_path = out_dir.join("browser-stdout.txt");
    let stderr_path = out_dir.join("browser-stderr.txt");

    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(dir.join("ui.mjs"))
        .arg(format!("http://{}", server.addr))
        .arg(&screenshot)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("browser stdout file"))
        .stderr(File::create(&stderr_path).expect("browser stderr file"))
        .spawn()
        .expect("run node");
    let status = wait_timeout(&mut child, NODE_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let took = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    println!(
        "{stdout}{stderr}browser test took {:.1} s",
        took.as_secs_f64()
    );

    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "browser test failed ({s}):\n{stdout}{stderr}\nserver log:\n{}",
            server.log()
        ),
        None => panic!(
            "browser test hung for {NODE_TIMEOUT:?}:\n{stdout}{stderr}\nserver log:\n{}",
            server.log()
        ),
    }
    assert!(
        stdout.contains("PASS"),
        "script exited 0 without PASS:\n{stdout}{stderr}"
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "screenshot {} is not a real PNG ({} bytes)",
        screenshot.display(),
        png.len()
    );
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = root.join("docs");
        std::fs::create_dir_all(&docs).expect("create docs/");
        std::fs::copy(&screenshot, docs.join("screenshot.png"))
            .expect("copy to docs/screenshot.png");
        println!("updated docs/screenshot.png");
    }
}
