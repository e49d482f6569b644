//! The stand-in Pi of the deploy tests: OpenSSH's sshd on a loopback port
//! (throw-away host and client keys, logging in as the current user), a
//! DESTDIR in a temp dir, and fake systemctl, journalctl, systemd-sysusers
//! and sudo that log their arguments; `systemctl restart` really starts the
//! deployed binary with the deployed config.

use crate::common::RunWithin;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use super::{host_binary, make, write_exec};
use crate::common;

pub fn tools_present() -> bool {
    [
        "make",
        "ssh",
        "ssh-keygen",
        "/usr/sbin/sshd",
        "curl",
        "tar",
        "setsid",
    ]
    .iter()
    .all(|t| common::have_tool(t))
}

/// Starts sshd on a free port: the port and the child once it listens, or
/// `None` if it exited (the port was taken in between).
fn start_sshd(d: &Path) -> Option<(u16, std::process::Child)> {
    let ssh_port = free_port();
    std::fs::write(
        d.join("sshd_config"),
        format!(
            "Port {ssh_port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAllowTcpForwarding yes\n\
             AllowStreamLocalForwarding yes\nPidFile {dir}/sshd.pid\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let mut sshd = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(d.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
        .spawn()
        .expect("start sshd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", ssh_port)).is_err() {
        if sshd.try_wait().ok().flatten().is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not listen: {}",
            std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((ssh_port, sshd))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn whoami() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output_within(crate::common::CHILD_TIMEOUT)
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn group() -> String {
    let out = Command::new("id")
        .arg("-gn")
        .output_within(crate::common::CHILD_TIMEOUT)
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// sshd on 127.0.0.1, plus a stand-in Pi: a DESTDIR, fake systemctl,
/// journalctl and systemd-sysusers, and the service's port.
pub struct Pi {
    sshd: Child,
    tmp: tempfile::TempDir,
    ssh_port: u16,
    pub svc_port: u16,
}

impl Pi {
    pub fn start() -> Pi {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for key in ["host_key", "user_key"] {
            super::run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd running as root wants its privilege-separation directory.
        if whoami() == "root" {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        // The free port may be taken by someone else before sshd binds it:
        // then sshd exits, and another port is tried.
        let (ssh_port, sshd) = (0..5).find_map(|_| start_sshd(d)).unwrap_or_else(|| {
            panic!(
                "sshd did not listen on any of 5 ports: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            )
        });

        let svc_port = free_port();
        let root = d.join("root");
        std::fs::create_dir_all(d.join("clips")).unwrap();
        // restart: stop the running copy (SIGKILL: quick, and how it stops
        // does not matter here), then start whatever binary is installed now
        // with the installed config (only the port, camera and clips dir
        // overridden, as this machine has no /dev/video0).
        write_exec(
            &d.join("systemctl"),
            &format!(
                r#"#!/bin/sh
echo "systemctl $*" >> {d}/calls.log
case "$1" in
restart)
  if [ -f {d}/service.pid ]; then
    pid=$(cat {d}/service.pid); kill -9 "$pid" 2>/dev/null; n=0
    # Gone, or a zombie (its port is free) that init has yet to reap.
    while [ -n "$(ps -o stat= -p "$pid" | grep -v Z)" ] && [ $n -lt 100 ]; do
      sleep 0.05; n=$((n+1))
    done
  fi
  setsid {root}/usr/local/bin/video-recorder --config {root}/etc/video-recorder/video-recorder.toml \
    --port {svc_port} --source test --clips-dir {d}/clips >> {d}/service.log 2>&1 < /dev/null &
  echo $! > {d}/service.pid ;;
esac
"#,
                d = d.display(),
                root = root.display(),
            ),
        );
        write_exec(
            &d.join("journalctl"),
            &format!(
                "#!/bin/sh\necho \"journalctl $*\" >> {d}/calls.log\ntail -n 20 {d}/service.log\n",
                d = d.display()
            ),
        );
        write_exec(
            &d.join("sysusers"),
            &format!(
                "#!/bin/sh\necho \"sysusers $*\" >> {d}/calls.log\n",
                d = d.display()
            ),
        );
        // Root's work on the Pi goes through SUDO: a stand-in that logs.
        write_exec(
            &d.join("sudo"),
            &format!(
                "#!/bin/sh\necho \"sudo $*\" >> {d}/calls.log\nexec \"$@\"\n",
                d = d.display()
            ),
        );
        Pi {
            sshd,
            tmp,
            ssh_port,
            svc_port,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn root(&self) -> PathBuf {
        self.dir().join("root")
    }

    pub fn bin(&self) -> PathBuf {
        self.root().join("usr/local/bin/video-recorder")
    }

    pub fn conf(&self) -> PathBuf {
        self.root().join("etc/video-recorder/video-recorder.toml")
    }

    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.dir().join("calls.log")).unwrap_or_default()
    }

    /// Every setting `make deploy` needs to reach this stand-in Pi.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let d = self.dir().display();
        vec![
            ("PI", format!("{}@127.0.0.1", whoami())),
            ("SSH_PORT", self.ssh_port.to_string()),
            (
                "SSH_OPTS",
                format!(
                    "-i {d}/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile=/dev/null \
                     -o StrictHostKeyChecking=no -o BatchMode=yes -o LogLevel=ERROR"
                ),
            ),
            ("DESTDIR", self.root().display().to_string()),
            ("SYSTEMCTL", format!("{d}/systemctl")),
            ("JOURNALCTL", format!("{d}/journalctl")),
            ("SYSUSERS", format!("{d}/sysusers")),
            ("CONFIG_GROUP", group()),
            ("SUDO", format!("{d}/sudo")),
            ("PI_PORT", self.svc_port.to_string()),
            ("DEPLOY_WAIT", "60".into()),
            ("HOST_VR", host_binary().display().to_string()),
        ]
    }

    pub fn deploy(&self, target: &str, extra: &[(&'static str, String)]) -> Output {
        let mut vars = self.vars();
        vars.extend(extra.iter().cloned());
        make(target, &vars, "")
    }

    pub fn status(&self, auth: Option<&str>) -> common::Response {
        let addr = format!("127.0.0.1:{}", self.svc_port).parse().unwrap();
        let header;
        let headers: Vec<(&str, &str)> = match auth {
            Some(pw) => {
                header = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}"))
                );
                vec![("Authorization", header.as_str())]
            }
            None => vec![],
        };
        common::request(addr, "GET", "/status", &headers, b"")
    }
}

impl Drop for Pi {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir().join("service.pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// A copy of the test binary, stripped when `strip` is at hand (a tenth of
/// the bytes to copy around), made different by trailing bytes (the loader
/// ignores them) to tell deployed versions apart.
pub fn variant(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&path)
        .arg(host_binary())
        .output_within(crate::common::CHILD_TIMEOUT)
        .is_ok_and(|o| o.status.success());
    if !stripped {
        std::fs::copy(host_binary(), &path).unwrap();
    }
    let mut bytes = read(&path);
    bytes.extend_from_slice(format!("\0variant {name}").as_bytes());
    std::fs::write(&path, bytes).unwrap();
    super::run(Command::new("chmod").arg("755").arg(&path));
    path
}
