//! How the settings that are more than text read and show themselves: each
//! is parsed once, here, into the type its role uses, and the error is the
//! parser's own (the caller names the key).

use super::table::{Input, Value};
use crate::proxies::ProxyList;
use crate::source::SourceSpec;
use crate::source::rtsp::Transport;
use crate::upload::KeyTemplate;

/// Reads text, then parses it with `parse`.
fn parsed<T>(input: Input<'_>, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, String> {
    parse(&String::read(input)?)
}

impl Value for SourceSpec {
    fn read(input: Input<'_>) -> Result<SourceSpec, String> {
        parsed(input, |s| {
            if s.trim().is_empty() {
                return Err("must not be empty".into());
            }
            SourceSpec::parse(s)
        })
    }
    /// Without credentials: `Debug` of the settings shows this.
    fn show(&self) -> String {
        self.display_name()
    }
}

impl Value for Transport {
    fn read(input: Input<'_>) -> Result<Transport, String> {
        parsed(input, Transport::parse)
    }
    fn show(&self) -> String {
        self.as_str().into()
    }
}

impl Value for ProxyList {
    fn read(input: Input<'_>) -> Result<ProxyList, String> {
        parsed(input, ProxyList::parse)
    }
    fn show(&self) -> String {
        ProxyList::show(self)
    }
}

impl Value for KeyTemplate {
    fn read(input: Input<'_>) -> Result<KeyTemplate, String> {
        parsed(input, KeyTemplate::parse)
    }
    fn show(&self) -> String {
        self.as_str().into()
    }
}

impl Value for log::LevelFilter {
    fn read(input: Input<'_>) -> Result<log::LevelFilter, String> {
        parsed(input, |s| {
            s.parse()
                .map_err(|_| "must be error, warn, info, debug or trace".into())
        })
    }
    fn show(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}
