use super::*;

#[test]
fn paths_decode_to_typed_routes() {
    let get = |p| lookup("GET", p).map(|(r, _)| r);
    assert_eq!(get("/video"), Ok(Route::Video(Cam::First)));
    assert_eq!(
        get("/cameras/door/video"),
        Ok(Route::Video(Cam::Named("door".parse().unwrap())))
    );
    assert_eq!(
        lookup("HEAD", "/cameras/door/last").map(|(r, _)| r),
        Ok(Route::Last(Cam::Named("door".parse().unwrap())))
    );
    assert_eq!(
        get("/clips/front-20261201-184233.jpg"),
        Ok(Route::ClipFile(Some((
            "front-20261201-184233".parse().unwrap(),
            ClipFile::Thumbnail
        ))))
    );
    assert_eq!(
        lookup("DELETE", "/clips/x"),
        Ok((Route::DeleteClip(None), Access::Admin))
    );
    assert_eq!(
        get("/cameras/Door/video"),
        Ok(Route::Video(Cam::Unknown("Door".into())))
    );
    assert_eq!(lookup("POST", "/start").unwrap().1, Access::Admin);
    assert_eq!(lookup("POST", "/cameras/a/stop").unwrap().1, Access::Admin);
    assert_eq!(lookup("GET", "/healthz").unwrap().1, Access::Public);
    assert_eq!(lookup("GET", "/clips/"), Err(vec![]));
    assert_eq!(lookup("GET", "/clips//etc/passwd"), Err(vec![]));
    assert_eq!(lookup("GET", "/cameras//video"), Err(vec![]));
    assert_eq!(lookup("GET", "/start"), Err(vec!["POST"]));
    assert_eq!(lookup("PUT", "/clips/x"), Err(vec!["GET", "DELETE"]));
    assert_eq!(lookup("DELETE", "/status"), Err(vec!["GET"]));
    assert_eq!(lookup("GET", "/nope"), Err(vec![]));
}

/// The document adds responses to the table's routes and nothing else:
/// every documented operation is served, every served one documented.
#[test]
fn openapi_is_the_route_table() {
    let file: Value = serde_json::from_slice(super::super::assets::OPENAPI).unwrap();
    for (path, ops) in file["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(method)),
                "{method} {path} is documented but not served"
            );
        }
    }
    let doc: Value = serde_json::from_slice(openapi()).unwrap();
    for row in ROUTES {
        let op = &doc["paths"][row.path][row.method.to_ascii_lowercase()];
        assert!(
            op["responses"].is_object(),
            "{} {} has no documented responses",
            row.method,
            row.path
        );
        let public = op["security"].as_array().is_some_and(|a| a.is_empty());
        assert_eq!(public, row.access == Access::Public, "{}", row.path);
    }
    assert!(doc["components"]["parameters"]["camera"].is_object());
    assert!(doc["components"]["parameters"]["name"].is_object());
}
