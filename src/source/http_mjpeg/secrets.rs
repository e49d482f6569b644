//! Taking a camera URL's secrets out of messages that quote the camera.

use super::url::{SECRET_PARAMS, percent_decode};

/// The secrets in a camera URL (its password, `user:password`, the Basic
/// token made of them, secret-looking query values), to be taken out of
/// every message that holds text the camera sent: a camera that answers
/// `500 admin:<password> rejected` must not put the password in the log or
/// `/status`, as with RTSP (`RtspUrl::scrub`). Works on malformed URLs too.
pub struct Secrets(Vec<String>);

impl Secrets {
    pub fn of(url: &str) -> Secrets {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let mut raw = Vec::new();
        if let Some((userinfo, _)) = rest.rsplit_once('@') {
            raw.push(userinfo.to_string());
            if let Some((user, pass)) = userinfo.split_once(':') {
                let (user, pass) = (percent_decode(user), percent_decode(pass));
                raw.push(pass.clone());
                raw.push(format!("{user}:{pass}"));
                use base64::Engine;
                raw.push(
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")),
                );
            }
            raw.extend(userinfo.split_once(':').map(|(_, p)| p.to_string()));
        }
        let query = rest
            .split_once('?')
            .map(|(_, q)| q.split('#').next().unwrap_or(q));
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if let Some((k, v)) = pair.split_once('=')
                && SECRET_PARAMS
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s))
            {
                raw.push(v.to_string());
                raw.push(percent_decode(v));
            }
        }
        // As `printable` would show them, too (non-ASCII made `?`).
        let shown: Vec<String> = raw
            .iter()
            .map(|s| {
                s.chars()
                    .map(|c| {
                        if c.is_ascii_graphic() || c == ' ' {
                            c
                        } else {
                            '?'
                        }
                    })
                    .collect()
            })
            .collect();
        let mut all: Vec<String> = raw
            .into_iter()
            .chain(shown)
            .filter(|s| !s.is_empty())
            .collect();
        // Longest first, so `user:pass` goes as a whole before `pass`.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Secrets(all)
    }

    /// `text` with every secret replaced by `***` (in any letter case: a
    /// camera may echo it lower-cased); where the text was cut short (`…`,
    /// as `printable` ends what it shortened), the start of a secret before
    /// the cut goes too.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            out = replace_ignoring_case(&out, s);
        }
        let mut from = 0;
        while let Some(i) = out[from..].find('…').map(|i| from + i) {
            let before = out[..i].to_ascii_lowercase();
            let cut = self
                .0
                .iter()
                .filter_map(|s| {
                    let s = s.to_ascii_lowercase();
                    (1..s.len())
                        .rev()
                        .filter(|&n| s.is_char_boundary(n))
                        .find(|&n| before.ends_with(&s[..n]))
                })
                .max();
            match cut {
                Some(n) => {
                    out.replace_range(i - n..i, "***");
                    from = i - n + "***".len() + '…'.len_utf8();
                }
                None => from = i + '…'.len_utf8(),
            }
        }
        out
    }
}

/// `text` with every occurrence of `needle` in any ASCII letter case
/// replaced by `***` (lower-casing ASCII keeps byte offsets).
fn replace_ignoring_case(text: &str, needle: &str) -> String {
    let (hay, needle) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in hay.match_indices(needle.as_str()) {
        if i >= last {
            out.push_str(&text[last..i]);
            out.push_str("***");
            last = i + needle.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets_from_what_the_camera_said() {
        let url = "http://camuser:Pa55%21w0rd@cam:81/s?user=camuser&pwd=Kx7%2Fq&res=1";
        let s = Secrets::of(url);
        assert_eq!(
            s.scrub("500 camuser:Pa55!w0rd rejected"),
            "500 *** rejected"
        );
        assert_eq!(s.scrub("bad pwd Kx7/q or Kx7%2Fq"), "bad pwd *** or ***");
        assert_eq!(s.scrub("echo Pa55%21w0rd"), "echo ***");
        assert_eq!(
            s.scrub("Basic Y2FtdXNlcjpQYTU1IXcwcmQ="),
            "Basic ***",
            "the Basic token of user:password"
        );
        assert_eq!(s.scrub("res=1 camuser"), "res=1 camuser", "the rest stays");
        assert_eq!(
            s.scrub("coding \"pa55!w0rd\""),
            "coding \"***\"",
            "any case"
        );
        // Cut short in the middle of the password: its start goes too.
        assert_eq!(s.scrub("answered 500 camuser:Pa55!…"), "answered 500 ***…");
        assert_eq!(s.scrub("a … b…"), "a … b…");
        // Non-ASCII shown as `?` by `printable`.
        let s = Secrets::of("http://u:p\u{e4}ssw0rd@cam/");
        assert_eq!(s.scrub("no p?ssw0rd here"), "no *** here");
        assert_eq!(Secrets::of("http://cam/").scrub("x…"), "x…");
    }
}
