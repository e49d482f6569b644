use super::*;

use std::time::{Duration, UNIX_EPOCH};

/// The four examples of AWS's "Signature Calculations for the Authorization
/// Header" page, at their date (2013-05-24T00:00:00Z).
fn aws_example(
    method: &str,
    path: &str,
    q: &str,
    headers: &[(&str, String)],
    payload: &str,
) -> String {
    let creds = Credentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let req = Request {
        method,
        host: "examplebucket.s3.amazonaws.com",
        path,
        query: q,
        headers,
        payload_sha256: payload,
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
    let signed = sign(&creds, "us-east-1", &req, now);
    let (k, auth) = signed.last().unwrap();
    assert_eq!(k, "authorization");
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        ),
        "{auth}"
    );
    auth.rsplit("Signature=").next().unwrap().to_string()
}

#[test]
fn the_signatures_are_those_of_the_aws_examples() {
    let get = aws_example(
        "GET",
        "/test.txt",
        "",
        &[("Range", "bytes=0-9".into())],
        EMPTY_SHA256,
    );
    assert_eq!(
        get,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    let put = aws_example(
        "PUT",
        "/test%24file.text",
        "",
        &[
            ("Date", "Fri, 24 May 2013 00:00:00 GMT".into()),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY".into()),
        ],
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
    );
    assert_eq!(
        put,
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
    let lifecycle = aws_example("GET", "/", &query(&[("lifecycle", "")]), &[], EMPTY_SHA256);
    assert_eq!(
        lifecycle,
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
    );
    let list = aws_example(
        "GET",
        "/",
        &query(&[("prefix", "J"), ("max-keys", "2")]),
        &[],
        EMPTY_SHA256,
    );
    assert_eq!(
        list,
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
    );
}

#[test]
fn a_session_token_is_signed_and_queries_are_encoded_and_sorted() {
    let creds = Credentials::new_with_token("AKIA1", "s", "tok/en+=");
    let req = Request {
        method: "HEAD",
        host: "h:9000",
        path: "/b/k",
        query: "",
        headers: &[],
        payload_sha256: EMPTY_SHA256,
    };
    let h = sign(&creds, "eu-west-1", &req, UNIX_EPOCH);
    let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-security-token",
            "authorization"
        ]
    );
    assert_eq!(h[2].1, "19700101T000000Z");
    assert_eq!(h[3].1, "tok/en+=");
    assert!(
        h[4].1
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,")
    );
    assert_eq!(
        query(&[("uploadId", "a/b+c="), ("partNumber", "2")]),
        "partNumber=2&uploadId=a%2Fb%2Bc%3D"
    );
    assert_eq!(query(&[("uploads", "")]), "uploads=");
}
