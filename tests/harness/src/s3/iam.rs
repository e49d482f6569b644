//! moto with its IAM authentication on: every request after the first few
//! must be signed by an access key that exists, with its secret (a wrong
//! secret is `SignatureDoesNotMatch`, an unknown key `InvalidAccessKeyId`).
//! The unchecked first requests make an IAM user allowed `s3:*` and its
//! access key; from then on the harness signs as that user.

use super::*;

/// moto's unchecked requests: CreateUser, PutUserPolicy, CreateAccessKey.
const UNCHECKED: &str = "3";
const USER: &str = "vr-recorder";
const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

impl S3Server {
    /// moto checking every signature, and an IAM user's key to sign with
    /// (`self.key`); `None` when moto is missing (as `start`). Not for
    /// `restart`: moto would come back without the user.
    pub fn start_iam(env: &[(&str, &str)]) -> Option<S3Server> {
        let mut all = vec![("INITIAL_NO_AUTH_ACTION_COUNT", UNCHECKED)];
        all.extend_from_slice(env);
        let mut s3 = S3Server::start_with_env(&all)?;
        s3.iam(&[("Action", "CreateUser"), ("UserName", USER)]);
        s3.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", USER),
            ("PolicyName", "s3-all"),
            ("PolicyDocument", POLICY),
        ]);
        let xml = s3.iam(&[("Action", "CreateAccessKey"), ("UserName", USER)]);
        let field = |t| element(&xml, t).unwrap_or_else(|| panic!("no {t} in {xml}"));
        s3.key = Key::new(&field("AccessKeyId"), &field("SecretAccessKey"));
        Some(s3)
    }

    /// One IAM call (a form POST to `/`, signed for `iam`: moto routes by
    /// the signature's scope), its XML answer.
    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut params = params.to_vec();
        params.push(("Version", "2010-05-08"));
        let body = canonical_query(&params);
        let host = self.addr().to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let date = amz_date(now);
        let payload = hex(&Sha256::digest(body.as_bytes()));
        let form = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = [
            ("content-type", form),
            ("host", host.as_str()),
            ("x-amz-date", date.as_str()),
        ];
        let auth = sigv4(
            "iam",
            "POST",
            "/",
            "",
            &signed,
            &payload,
            &date,
            &self.key.id,
            &self.key.secret,
        );
        let headers = [
            ("Content-Type", form),
            ("X-Amz-Date", date.as_str()),
            ("Authorization", auth.as_str()),
        ];
        let r = try_request(self.addr(), "POST", "/", &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("IAM {params:?}: {e}\n{}", self.log_tail()));
        self.expect_ok(&format!("IAM {params:?}"), &r);
        r.text()
    }
}
