//! `make deploy` and `make rollback` against a real OpenSSH server that the
//! test starts on a loopback port with a throw-away host key and client key,
//! logging in as the current user. The "Pi" is this machine: files go into a
//! temp dir (DESTDIR), and a fake systemctl records its arguments and, on
//! `restart`, really starts the deployed binary with the deployed config, so
//! the wait for /status through the ssh tunnel is real (tests/pi/stand_in.rs).

mod common;
mod pi;

use pi::stand_in::{Pi, count, read, tools_present, variant};
use pi::{make, mode, repo, text, write_exec};

#[test]
fn deploy_installs_restarts_keeps_the_previous_binary_and_rolls_back() {
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let work = tempfile::tempdir().unwrap();
    let a = variant(work.path(), "a");
    let b = variant(work.path(), "b");
    let password = "deploy-test-password";
    let pw_file = work.path().join("pw");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    let pw = ("PASSWORD_FILE", pw_file.display().to_string());

    let out = pi.deploy("deploy", &[("BIN", a.display().to_string()), pw.clone()]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // With the password known, the wait checks /status with it: 200.
    assert!(log.contains("/status answered 200"), "{log}");
    assert!(
        !log.contains(password),
        "the password must not be printed: {log}"
    );
    assert_eq!(read(&pi.bin()), read(&a), "the binary is installed");
    assert_eq!(mode(&pi.bin()), 0o755);
    assert!(!pi.bin().with_extension("prev").exists());
    let unit = pi.root().join("etc/systemd/system/video-recorder.service");
    assert_eq!(
        read(&unit),
        read(&repo().join("image/video-recorder.service"))
    );
    assert_eq!(mode(&unit), 0o644);
    assert_eq!(
        read(&pi.root().join("usr/lib/sysusers.d/video-recorder.conf")),
        read(&repo().join("image/video-recorder.sysusers.conf"))
    );
    let conf = String::from_utf8(read(&pi.conf())).unwrap();
    let template = std::fs::read_to_string(repo().join("image/video-recorder.toml")).unwrap();
    assert!(
        conf.starts_with(&template),
        "the shipped config, then: {conf}"
    );
    assert!(conf.contains("\npassword_hash = \"$argon2id$"), "{conf}");
    assert!(!conf.contains(password), "only the hash goes to the Pi");
    assert_eq!(mode(&pi.conf()), 0o640, "the hash is not world-readable");
    let calls = pi.calls();
    for call in [
        "sudo sh /tmp/video-recorder-deploy.",
        "sysusers ",
        "systemctl daemon-reload",
        "systemctl enable video-recorder.service",
        "systemctl restart video-recorder.service",
    ] {
        assert!(calls.contains(call), "{call} missing from:\n{calls}");
    }
    // The running service is the deployed one, on the LAN address with the
    // password from the deployed config.
    assert_eq!(pi.status(None).status, 401);
    let st = pi.status(Some(password));
    assert_eq!(st.status, 200, "{}", st.text());
    let service_log = std::fs::read_to_string(pi.dir().join("service.log")).unwrap();
    assert!(
        service_log.contains(&format!("listening on http://0.0.0.0:{}", pi.svc_port)),
        "{service_log}"
    );

    // Second deploy: the first binary is kept for rollback.
    let out = pi.deploy("deploy", &[("BIN", b.display().to_string()), pw.clone()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(read(&pi.bin()), read(&b));
    assert_eq!(read(&pi.bin().with_extension("prev")), read(&a));
    assert!(
        text(&out).contains("previous one kept as"),
        "{}",
        text(&out)
    );
    assert_eq!(count(&pi.calls(), "systemctl restart"), 2);

    // Rollback swaps them and restarts.
    let out = pi.deploy("rollback", &[pw]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("/status answered 200"), "{log}");
    assert_eq!(read(&pi.bin()), read(&a), "rolled back");
    assert_eq!(read(&pi.bin().with_extension("prev")), read(&b));
    assert_eq!(count(&pi.calls(), "systemctl restart"), 3);
    assert_eq!(pi.status(Some(password)).status, 200);
}

/// The password made for a new install is shown once and works; a config
/// nobody edited follows the template; an edited one is never overwritten.
#[test]
fn deploy_never_overwrites_an_edited_config() {
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let work = tempfile::tempdir().unwrap();
    let bin = ("BIN", variant(work.path(), "bin").display().to_string());
    let out = pi.deploy("deploy", std::slice::from_ref(&bin));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let password = log
        .lines()
        .skip_while(|l| !l.contains("admin password (shown once"))
        .map(str::trim)
        .find(|l| l.len() == 20)
        .unwrap_or_else(|| panic!("no generated password shown: {log}"))
        .to_string();
    assert_eq!(pi.status(Some(&password)).status, 200);
    let hash_line = |conf: &str| {
        conf.lines()
            .find(|l| l.starts_with("password_hash"))
            .unwrap()
            .to_string()
    };
    let first = std::fs::read_to_string(pi.conf()).unwrap();

    // A new template, the config untouched since: replaced, same password.
    let template = std::fs::read_to_string(repo().join("image/video-recorder.toml")).unwrap();
    let t1 = work.path().join("t1.toml");
    std::fs::write(
        &t1,
        template.replace("max_viewers = 100", "max_viewers = 50"),
    )
    .unwrap();
    let out = pi.deploy(
        "deploy",
        &[bin.clone(), ("CONFIG", t1.display().to_string())],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("it had not been edited"), "{log}");
    assert!(!log.contains("admin password (shown once"), "{log}");
    let second = std::fs::read_to_string(pi.conf()).unwrap();
    assert!(second.contains("max_viewers = 50"), "{second}");
    assert_eq!(hash_line(&first), hash_line(&second));
    let st = pi.status(Some(&password));
    assert_eq!(st.status, 200);
    assert_eq!(st.json()["max_viewers"], 50);

    // The user edits it; the next deploy leaves it alone and says so.
    let edited = second.replace("max_viewers = 50", "max_viewers = 7");
    std::fs::write(pi.conf(), &edited).unwrap();
    let t2 = work.path().join("t2.toml");
    std::fs::write(
        &t2,
        template.replace("max_viewers = 100", "max_viewers = 60"),
    )
    .unwrap();
    let out = pi.deploy("deploy", &[bin, ("CONFIG", t2.display().to_string())]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("KEPT your edited"), "{log}");
    assert_eq!(std::fs::read_to_string(pi.conf()).unwrap(), edited);
    let new = std::fs::read_to_string(pi.conf().with_extension("toml.new")).unwrap();
    assert!(new.contains("max_viewers = 60"), "{new}");
    assert_eq!(hash_line(&new), hash_line(&first));
    assert_eq!(pi.status(Some(&password)).json()["max_viewers"], 7);
}

/// A binary that never answers: deploy waits, then fails with the service's
/// last log lines and the way back.
#[test]
fn deploy_fails_loudly_when_status_never_answers() {
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let work = tempfile::tempdir().unwrap();
    let broken = work.path().join("broken");
    write_exec(
        &broken,
        "#!/bin/sh\necho 'fake: the camera caught fire' >&2\nexec sleep 60\n",
    );
    let out = pi.deploy(
        "deploy",
        &[
            ("BIN", broken.display().to_string()),
            ("DEPLOY_WAIT", "3".into()),
        ],
    );
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not answer /status within 3s"), "{log}");
    assert!(err.contains("fake: the camera caught fire"), "{log}");
    assert!(err.contains("make rollback PI="), "{log}");
    // The password made for this install is shown although deploy failed:
    // its hash is on the Pi now.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("admin password (shown once"),
        "{log}"
    );
    assert!(pi.calls().contains("journalctl -u video-recorder.service"));
}

#[test]
fn deploy_refuses_a_binary_for_another_architecture() {
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let work = tempfile::tempdir().unwrap();
    let riscv = work.path().join("riscv");
    pi::fake_elf(&riscv, 0xf3, true);
    let out = pi.deploy("deploy", &[("BIN", riscv.display().to_string())]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("is built for other:f300 but"), "{log}");
    assert!(!pi.bin().exists(), "nothing installed");
    assert!(!pi.calls().contains("restart"));
}

/// Settings that would become options or shell code are refused before
/// anything runs.
#[test]
fn deploy_refuses_unsafe_settings_before_connecting() {
    if !common::have_tool("make") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("pwned");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "say which Pi"),
        (
            vec![("PI", format!("-oProxyCommand=touch {}", marker.display()))],
            "is not user@host",
        ),
        (
            vec![("PI", format!("pi@host;touch {}", marker.display()))],
            "is not user@host",
        ),
        (
            vec![("PI", "pi@host".into()), ("SSH_PORT", "22 -v".into())],
            "is not a port",
        ),
        (
            vec![("PI", "pi@host".into()), ("DESTDIR", "/tmp/a b".into())],
            "DESTDIR may only use",
        ),
        (
            vec![("PI", "pi@host".into()), ("DESTDIR", "relative".into())],
            "absolute path",
        ),
        (
            vec![
                ("PI", "pi@host".into()),
                ("SYSTEMCTL", format!("systemctl;touch {}", marker.display())),
            ],
            "SYSTEMCTL must be one command",
        ),
    ];
    for (vars, want) in cases {
        let out = make("deploy", &vars, "");
        let log = text(&out);
        assert!(!out.status.success(), "{vars:?}: {log}");
        assert!(log.contains(want), "{vars:?}: want {want:?} in {log}");
    }
    assert!(!marker.exists(), "no setting may run as code");
}

/// A config that serves HTTPS (self-signed here): the wait speaks HTTPS.
#[test]
fn deploy_waits_for_https_when_the_config_serves_it() {
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let work = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(repo().join("image/video-recorder.toml")).unwrap();
    let tls = work.path().join("tls.toml");
    std::fs::write(&tls, format!("{template}\ntls_self_signed = true\n")).unwrap();
    let out = pi.deploy(
        "deploy",
        &[
            ("BIN", variant(work.path(), "bin").display().to_string()),
            ("CONFIG", tls.display().to_string()),
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("for https://127.0.0.1:"), "{log}");
    assert!(log.contains("/status answered 200"), "{log}");
}

/// Without BIN, deploy builds what the Pi runs: arm64 or armhf only.
#[test]
fn deploy_builds_only_for_raspberry_pi_systems() {
    let arch = std::env::consts::ARCH;
    if matches!(arch, "aarch64" | "arm") {
        // Here deploy would start a release build for this very machine.
        common::skip(&format!("this machine ({arch}) is itself a Pi target"));
        return;
    }
    if !tools_present() {
        return;
    }
    let pi = Pi::start();
    let out = pi.deploy("deploy", &[]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!("no build for a {arch} system")),
        "{log}"
    );
    assert!(!pi.bin().exists());
}
