//! Unit tests that need a system tool (ffmpeg, ffprobe): skipped, saying
//! why, where it is missing; a failure under `CI_REQUIRE_TOOLS=1`.

use std::process::Command;

pub fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("-version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{tool} is required (CI_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIP: {tool} not installed");
    }
    found
}
