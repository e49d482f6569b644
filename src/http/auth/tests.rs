use super::super::credentials::tests::{cfg, creds};
use super::*;

/// An Authorization header, checked to the end as the server does.
fn check(a: &Auth, h: &str, ip: Option<IpAddr>) -> Result<Principal, Denied> {
    match a.authorization(h, ip) {
        Check::Done(r) => r,
        Check::Verify(at) => a.finish(at),
        Check::Queued(q) => a.wait_queued(q),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn env_secrets_are_hashed_and_checked() {
    let e = Credentials::load(&cfg("0.0.0.0"), [("VR_PASSWORD".into(), "short".into())]);
    assert!(e.err().unwrap().contains("VR_PASSWORD"));
    let c = creds("correct horse");
    let admin = c.admin.clone().unwrap();
    assert!(admin.starts_with("$argon2id$"));
    assert!(!admin.contains("correct horse"));
    let a = Auth::new(&cfg("0.0.0.0"), c);
    assert!(a.required());
    assert!(a.login(None, "admin", "correct horse", None).is_ok());
    assert_eq!(
        a.login(None, "admin", "wrong horse", None),
        Err(Denied::Wrong)
    );
    assert_eq!(
        a.login(None, "mallory", "correct horse", None),
        Err(Denied::Wrong)
    );
    assert_eq!(
        a.login(None, "viewer", "correct horse", None),
        Err(Denied::Wrong)
    );
    // The decoy's own password opens nothing.
    assert_eq!(
        a.login(None, "mallory", "decoy-password-never-valid", None),
        Err(Denied::Wrong)
    );
}

#[test]
fn basic_header_parsing() {
    let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
    assert_eq!(
        check(&a, &format!("Basic {}", b64("admin:correct horse")), None),
        Ok(Principal {
            role: Role::Admin,
            via: Via::Basic
        })
    );
    // Cached now, and still right.
    assert!(matches!(
        a.authorization(&format!("basic {}", b64("admin:correct horse")), None),
        Check::Done(Ok(_))
    ));
    assert_eq!(
        check(&a, &format!("Basic {}", b64("admin:nope")), None),
        Err(Denied::Wrong)
    );
    for bad in [
        "Basic !!!".to_string(),
        format!("Basic {}", b64("nocolon")),
        "Basic".to_string(),
        "Digest x".to_string(),
        "x".repeat(5000),
    ] {
        assert!(
            matches!(check(&a, &bad, None), Err(Denied::Malformed(_))),
            "{bad:.40}"
        );
    }
    assert_eq!(check(&a, "Bearer whatever", None), Err(Denied::Wrong));
}

#[test]
fn lockout_slows_guesses_but_not_the_verified_owner() {
    let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
    let ip: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
    let good = format!("Basic {}", b64("admin:correct horse"));
    // The owner signed in before the attack.
    assert!(check(&a, &good, ip).is_ok());
    for _ in 0..super::super::lockout::FREE_FAILURES {
        assert_eq!(a.login(ip, "admin", "guess", None), Err(Denied::Wrong));
    }
    assert!(matches!(
        a.login(ip, "admin", "correct horse", None),
        Err(Denied::Limited(_))
    ));
    // Already verified: let in without a check, whatever the lockout.
    assert!(matches!(
        a.authorization(&good, ip),
        Check::Done(Ok(Principal {
            role: Role::Admin,
            ..
        }))
    ));
    // Another client is not affected.
    assert!(
        a.login(
            Some("10.0.0.10".parse().unwrap()),
            "admin",
            "correct horse",
            None
        )
        .is_ok()
    );
}

#[test]
fn concurrent_guesses_are_claimed_before_they_are_checked() {
    let a = Arc::new(Auth::new(&cfg("0.0.0.0"), creds("correct horse")));
    let ip: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
    let threads: Vec<_> = (0..40)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || a.login(ip, "admin", "guess", None))
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = answers.iter().filter(|r| **r == Err(Denied::Wrong)).count();
    assert_eq!(
        checked,
        super::super::lockout::FREE_FAILURES as usize,
        "{answers:?}"
    );
    // The others waited for those and were then told to wait (429): a
    // guesser's crowd gets no more checks than a sequence of guesses.
    assert!(
        answers
            .iter()
            .all(|r| matches!(r, Err(Denied::Wrong | Denied::Limited(_)))),
        "{answers:?}"
    );
}

/// The right credentials, many requests at once before any is cached (a
/// page opening its requests after sign-in): every one is let in, none
/// refused as busy, and few Argon2 checks are spent on them.
#[test]
fn concurrent_right_credentials_all_get_in() {
    let a = Arc::new(Auth::new(&cfg("0.0.0.0"), creds("correct horse")));
    let ip: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
    let h = format!("Basic {}", b64("admin:correct horse"));
    let basic: Vec<_> = (0..50)
        .map(|_| {
            let (a, h) = (a.clone(), h.clone());
            std::thread::spawn(move || check(&a, &h, ip))
        })
        .collect();
    let forms: Vec<_> = (0..16)
        .map(|_| {
            let a = a.clone();
            std::thread::spawn(move || a.login(ip, "admin", "correct horse", None).map(|_| ()))
        })
        .collect();
    for t in basic {
        assert!(t.join().unwrap().is_ok());
    }
    for t in forms {
        assert_eq!(t.join().unwrap(), Ok(()));
    }
}

/// A browser with a device cookie for the user signs in while guessers
/// have used the device-wide budget up; one without is slowed.
#[test]
fn a_device_cookie_passes_the_device_wide_budget() {
    let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
    let device = a.devices.issue("admin").unwrap();
    for i in 0..200u32 {
        let ip = Some(format!("10.2.{}.{}", i / 200, i % 200).parse().unwrap());
        let _ = a.login(ip, "admin", "guess", None);
    }
    let owner = Some("192.168.1.20".parse().unwrap());
    assert!(matches!(
        a.login(owner, "admin", "correct horse", None),
        Err(Denied::Limited(_))
    ));
    assert!(
        a.login(owner, "admin", "correct horse", Some(&device))
            .is_ok()
    );
    // Not another user's cookie, nor a forged one.
    let viewer = a.devices.issue("viewer").unwrap();
    assert!(matches!(
        a.login(owner, "admin", "correct horse", Some(&viewer)),
        Err(Denied::Limited(_))
    ));
}

#[test]
fn only_configured_user_names_are_shown() {
    let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
    assert_eq!(a.known_user("admin"), "admin");
    assert_eq!(a.known_user("viewer"), "viewer");
    assert_eq!(a.known_user("hunter2-typed-in-the-wrong-box"), OTHER_USER);
}

#[test]
fn sessions() {
    let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
    let t = a.login(None, "admin", "correct horse", None).unwrap();
    assert_eq!(t.len(), 64);
    assert_eq!(a.memory.session(&t), Some(Role::Admin));
    assert_eq!(a.memory.session("0000"), None);
}
