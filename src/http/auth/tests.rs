use super::super::credentials::tests::{cfg, creds};
use super::*;

/// An Authorization header, checked to the end as the server does.
fn check(a: &Auth, h: &str, ip: Option<IpAddr>) -> Result<Principal, Denied> {
    match a.authorization(h, ip) {
        Check::Done(r) => r,
        Check::Verify(at) => a.finish(at),
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
    assert!(a.login(None, "admin", "correct horse").is_ok());
    assert_eq!(a.login(None, "admin", "wrong horse"), Err(Denied::Wrong));
    assert_eq!(
        a.login(None, "mallory", "correct horse"),
        Err(Denied::Wrong)
    );
    assert_eq!(a.login(None, "viewer", "correct horse"), Err(Denied::Wrong));
    // The decoy's own password opens nothing.
    assert_eq!(
        a.login(None, "mallory", "decoy-password-never-valid"),
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
        assert_eq!(a.login(ip, "admin", "guess"), Err(Denied::Wrong));
    }
    assert!(matches!(
        a.login(ip, "admin", "correct horse"),
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
        a.login(Some("10.0.0.10".parse().unwrap()), "admin", "correct horse")
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
            std::thread::spawn(move || a.login(ip, "admin", "guess"))
        })
        .collect();
    let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let checked = answers.iter().filter(|r| **r == Err(Denied::Wrong)).count();
    assert_eq!(
        checked,
        super::super::lockout::FREE_FAILURES as usize,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|r| matches!(r, Err(Denied::Wrong | Denied::Busy)))
    );
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
    let t = a.login(None, "admin", "correct horse").unwrap();
    assert_eq!(t.len(), 64);
    assert_eq!(a.memory.session(&t), Some(Role::Admin));
    assert_eq!(a.memory.session("0000"), None);
}
