use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn serve(a: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    match parse(args(a), env)? {
        Command::Serve(c) => Ok(*c),
        other => panic!("expected serve, got {other:?}"),
    }
}

fn tmp_toml(name: &str, body: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vr-cfg-{}-{name}.toml", std::process::id()));
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn settings_that_go_together_may_come_one_flag_at_a_time() {
    let c = serve("--tls-cert a.pem --tls-key b.pem", &[]).unwrap();
    assert_eq!(c.tls_key, PathBuf::from("b.pem"));
    let c = serve("--admin-user viewer --viewer-user watcher", &[]).unwrap();
    assert_eq!(
        (c.admin_user.as_str(), c.viewer_user.as_str()),
        ("viewer", "watcher")
    );
    let e = serve("--tls-cert a.pem", &[]).unwrap_err();
    assert_eq!(e.key, "tls_key");
    let e = serve("", &[("VR_TLS_KEY", "k.pem")]).unwrap_err();
    assert_eq!(e.key, "tls_key");
    // One layer may finish what another began.
    let c = serve("--viewer-user watcher", &[("VR_ADMIN_USER", "viewer")]).unwrap();
    assert_eq!(c.admin_user, "viewer");
}

#[test]
fn defaults_match_the_original_readme() {
    let c = serve("", &[]).unwrap();
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8000));
    assert_eq!(c.clips_dir, PathBuf::from("clips"));
    assert_eq!(c.cameras[0].source, crate::source::SourceSpec::Auto);
    assert_eq!(c.cameras[0].id, "cam");
    assert!(!c.camera_sections);
}

#[test]
fn layers_apply_in_order() {
    let p = tmp_toml("layers", "port = 9000\nfps = 15\nwidth = 640\n");
    let c = serve(
        &format!("--config {} --port 9002", p.display()),
        &[("VR_PORT", "9001"), ("VR_FPS", "20")],
    )
    .unwrap();
    assert_eq!(c.port, 9002, "flag beats env");
    assert_eq!(c.cameras[0].fps, 20, "env beats file");
    assert_eq!(c.cameras[0].width, 640, "file beats default");
    let c = serve(
        "--port=9003 --clips-dir /x",
        &[("VR_CONFIG", p.to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(
        (c.port, c.cameras[0].fps, c.clips_dir),
        (9003, 15, PathBuf::from("/x"))
    );
}

#[test]
fn errors_name_the_key() {
    let p = tmp_toml("unknown", "port = 8000\nframerate = 30\n");
    let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
    assert_eq!(e.key, "framerate");
    let p = tmp_toml("type", "width = 640\nport = \"eighty\"\n");
    let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
    assert_eq!(e.key, "port", "{e}");
    let p = tmp_toml("range", "fps = 0\n");
    let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
    assert_eq!(e.key, "fps");
    let e = serve("", &[("VR_PORT", "99999")]).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.origin.as_str()),
        ("port", "environment VR_PORT")
    );
    let e = serve("", &[("VR_COLOUR", "red")]).unwrap_err();
    assert_eq!(e.key, "colour");
    let e = serve("--width 641", &[]).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.origin.as_str()),
        ("width", "flag --width")
    );
    let e = serve("--width 3840 --height 3840", &[]).unwrap_err();
    assert_eq!(e.key, "height", "{e}");
    assert!(e.to_string().contains("3840x2160 pixels in all"), "{e}");
    assert!(
        serve("--width 2160 --height 3840", &[]).is_ok(),
        "portrait 4K"
    );
    let e = serve("--width 7680", &[]).unwrap_err();
    assert_eq!(e.key, "width");
    let e = serve("--bogus 1", &[]).unwrap_err();
    assert_eq!(e.key, "bogus");
    let e = serve("--port", &[]).unwrap_err();
    assert!(e.to_string().contains("needs a value"), "{e}");
    let e = serve("--config /nonexistent/vr.toml", &[]).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/vr.toml"), "{e}");
    let e = serve("--log-level loud", &[]).unwrap_err();
    assert_eq!(e.key, "log_level");
}

#[test]
fn subcommands() {
    assert_eq!(parse(args("--help"), []), Ok(Command::Help));
    assert_eq!(
        parse(args("probe a.mp4"), []),
        Ok(Command::Probe(PathBuf::from("a.mp4")))
    );
    assert!(parse(args("probe"), []).is_err());
}

#[test]
fn camera_sections_start_from_the_flat_keys() {
    let p = tmp_toml(
        "cameras",
        r#"
fps = 15
port = 9000

[[camera]]
id = "front"
source = "/dev/v4l/by-id/usb-Logitech_C920-video-index0"
width = 1280
height = 720
fps = 30
pre_roll_sec = 3

[[camera]]
id = "door"
source = "http://user:secret@192.168.1.50:81/stream"
"#,
    );
    let c = serve(&format!("--config {}", p.display()), &[("VR_WIDTH", "640")]).unwrap();
    assert!(c.camera_sections);
    let ids: Vec<&str> = c.cameras.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["front", "door"]);
    assert_eq!((c.cameras[0].fps, c.cameras[0].pre_roll_sec), (30, 3.0));
    // Flat keys, from any layer, are every camera's defaults.
    assert_eq!((c.cameras[1].fps, c.cameras[1].width), (15, 640));
    assert_eq!(c.cameras[0].width, 1280, "a camera's own key wins");
    assert_eq!(c.port, 9000);
}

#[test]
fn camera_section_errors_name_the_key() {
    let err = |name: &str, body: &str, args: &str| {
        let p = tmp_toml(name, body);
        serve(&format!("--config {} {args}", p.display()), &[]).unwrap_err()
    };
    let e = err("noid", "[[camera]]\nsource = \"test\"\n", "");
    assert_eq!(e.key, "id");
    let e = err(
        "badid",
        "[[camera]]\nid = \"Front Door\"\nsource = \"test\"\n",
        "",
    );
    assert_eq!(e.key, "id");
    assert!(e.to_string().contains("a-z"), "{e}");
    let e = err(
        "dup",
        "[[camera]]\nid = \"a\"\nsource = \"test\"\n[[camera]]\nid = \"a\"\nsource = \"test\"\n",
        "",
    );
    assert_eq!(e.key, "id");
    assert!(e.to_string().contains("already used"), "{e}");
    let e = err(
        "samedev",
        "[[camera]]\nid = \"a\"\nsource = \"/dev/video0\"\n[[camera]]\nid = \"b\"\nsource = \"/dev/video0\"\n",
        "",
    );
    assert_eq!(e.key, "source");
    assert!(e.origin.contains("[[camera]] 2 (b)"), "{e}");
    let e = err(
        "unknown",
        "[[camera]]\nid = \"a\"\nsource = \"test\"\nframerate = 3\n",
        "",
    );
    assert_eq!(e.key, "framerate");
    let e = err(
        "global",
        "[[camera]]\nid = \"a\"\nsource = \"test\"\nport = 1\n",
        "",
    );
    assert_eq!(e.key, "port");
    assert!(e.message.contains("whole process"), "{e}");
    let e = err(
        "range",
        "[[camera]]\nid = \"a\"\nsource = \"test\"\nfps = 500\n",
        "",
    );
    assert_eq!(e.key, "fps");
    let e = err("nosource", "[[camera]]\nid = \"a\"\n", "");
    assert_eq!(e.key, "source");
    let e = err(
        "flatsource",
        "[[camera]]\nid = \"a\"\nsource = \"test\"\n",
        "--source test",
    );
    assert_eq!(
        (e.key.as_str(), e.origin.as_str()),
        ("source", "flag --source")
    );
    let e = err("rtsps", "source = \"rtsps://cam/x\"\n", "");
    assert_eq!(e.key, "source");
    assert!(e.message.contains("TLS"), "{}", e.message);
    let e = err(
        "transport",
        "source = \"rtsp://cam/x\"\nrtsp_transport = \"http\"\n",
        "",
    );
    assert_eq!(e.key, "rtsp_transport");
    let e = err("notarray", "camera = 3\n", "");
    assert_eq!(e.key, "camera");
}

/// `--help` and the README's configuration table name every setting.
#[test]
fn help_and_readme_list_every_setting() {
    let help = usage();
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Configuration section");
    // The keys column of the table, not the prose around it.
    let keys: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(" |").next())
        .collect();
    let listed = |name: &str| {
        keys.iter()
            .any(|k| k.split(" / ").any(|k| k.trim_matches('`') == name))
    };
    for s in table() {
        let flag = format!("--{}", s.name.replace('_', "-"));
        assert!(help.contains(&flag), "--help lacks {flag}");
        assert!(
            listed(s.name),
            "the README's configuration table lacks `{}`",
            s.name
        );
    }
    // A camera's id is read by the [[camera]] parser, not the table.
    assert!(listed("id"), "the README's configuration table lacks `id`");
    assert!(section.contains("[[camera]]"));
}
