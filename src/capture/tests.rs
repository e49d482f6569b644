use super::*;
use crate::hub::SourceStatus;

fn hub(kind: &str, name: &str) -> Hub {
    Hub::new(
        Duration::ZERO,
        SourceStatus {
            kind: kind.into(),
            name: name.into(),
            state: SourceState::Starting,
            width: 0,
            height: 0,
            nominal_fps: 30.0,
            message: None,
            ..Default::default()
        },
    )
}

const WANT: Format = Format {
    width: 64,
    height: 48,
    fps: 30,
};

#[test]
fn auto_without_a_camera_falls_back_to_test_loudly() {
    let h = hub("v4l2", "auto");
    let (spec, first, up) = resolve(
        &h,
        &SourceSpec::Auto,
        WANT,
        Path::new("/dev/video-not-here"),
        &source::v4l2::open,
    );
    assert_eq!(spec, SourceSpec::Test);
    assert!(first.is_none());
    assert_eq!(up.state, SourceState::Test);
    let st = h.status();
    assert_eq!((st.kind.as_str(), st.name.as_str()), ("test", "test"));
    let msg = st.message.unwrap();
    assert!(
        msg.contains("No camera") && msg.contains("/dev/video-not-here"),
        "{msg}"
    );
    assert!(msg.contains("TEST SOURCE"), "{msg}");
}

#[test]
fn auto_prefers_a_stable_camera_name() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(auto_device(dir.path()), Path::new(AUTO_DEVICE));
    for name in [
        "usb-Logi_C270_B1-video-index1",
        "usb-Logi_C270_B1-video-index0",
        "usb-Acme_Cam_1-video-index0",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    assert_eq!(
        auto_device(dir.path()),
        dir.path().join("usb-Acme_Cam_1-video-index0")
    );
    assert_eq!(
        auto_device(Path::new("/nonexistent")),
        Path::new(AUTO_DEVICE)
    );
}

#[test]
fn explicit_sources_keep_their_spec() {
    let h = hub("file", "x.mjpeg");
    let spec = SourceSpec::File("x.mjpeg".into());
    let (s, first, up) = resolve(
        &h,
        &spec,
        WANT,
        Path::new("/dev/video-not-here"),
        &source::v4l2::open,
    );
    assert_eq!(s, spec);
    assert!(first.is_none());
    assert_eq!(up.state, SourceState::Live);
    let (_, _, up) = resolve(
        &h,
        &SourceSpec::Test,
        WANT,
        Path::new("/nope"),
        &source::v4l2::open,
    );
    assert_eq!(up.state, SourceState::Test);
    assert!(up.message.unwrap().contains("not a camera"));
}

#[test]
fn thread_runs_the_test_source_and_stops_on_close() {
    let h = Arc::new(hub("test", "test"));
    let t = spawn(
        "test",
        h.clone(),
        CaptureSettings {
            spec: SourceSpec::Test,
            want: WANT,
            stall_timeout: Duration::from_secs(3),
        },
    )
    .unwrap();
    let f = h.wait_newer(0, Duration::from_secs(30)).expect("a frame");
    assert_eq!((f.width, f.height), (64, 48));
    assert!(!f.no_signal);
    assert_eq!(h.status().state, SourceState::Test);
    h.close();
    t.join().unwrap();
}

/// A stand-in camera: present once its by-id node exists, and then a
/// test pattern of another size than the fallback's.
fn fake_camera(p: &Path, _want: Format) -> Result<Box<dyn Source>, SourceError> {
    if !p.exists() {
        return Err(SourceError(format!("{}: no such device", p.display())));
    }
    let f = Format {
        width: 96,
        height: 64,
        fps: 30,
    };
    Ok(Box::new(source::test::TestSource::new(f)?))
}

#[test]
fn auto_switches_to_a_camera_plugged_in_while_the_test_pattern_runs() {
    let h = Arc::new(hub("v4l2", "auto"));
    let dir = tempfile::tempdir().unwrap();
    let by_id = dir.path().to_path_buf();
    let t = {
        let (h, by_id) = (h.clone(), by_id.clone());
        let settings = CaptureSettings {
            spec: SourceSpec::Auto,
            want: WANT,
            stall_timeout: Duration::from_secs(3),
        };
        std::thread::spawn(move || run(&h, settings, &by_id, &fake_camera))
    };
    let before = h.wait_newer(0, Duration::from_secs(30)).expect("a frame");
    assert_eq!((before.width, before.height), (64, 48));
    assert_eq!(h.status().state, SourceState::Test);
    let node = by_id.join("usb-Fake_Cam_1-video-index0");
    std::fs::write(&node, b"").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut seq = before.seq;
    let after = loop {
        let f = h
            .wait_newer(seq, Duration::from_secs(5))
            .expect("frames go on");
        // Frame numbers carry on across the switch: viewers wait on them.
        assert!(f.seq > seq);
        seq = f.seq;
        if (f.width, f.height) == (96, 64) {
            break f;
        }
        assert!(std::time::Instant::now() < deadline, "never switched");
    };
    assert!(after.capture > before.capture);
    let st = h.status();
    assert_eq!(st.state, SourceState::Live);
    assert_eq!(st.kind, "v4l2");
    assert_eq!(st.name, node.display().to_string());
    assert_eq!(st.message, None);
    h.close();
    t.join().unwrap();
}
