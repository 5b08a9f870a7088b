//! `Secret`: a string that never prints itself. Secret access keys, token keys and upstream
//! credentials live only in this type, so a stray `{:?}` in a log line cannot leak them.

use std::fmt;

/// A secret value; `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    pub fn new(value: impl Into<Box<str>>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the few places that compute with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret kept in a file (`…_file`): its text without trailing line ends; `None` when that
/// leaves nothing.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Option<Secret>> {
    let text = std::fs::read_to_string(path)?;
    let text = text.trim_end_matches(['\r', '\n']);
    Ok((!text.is_empty()).then(|| Secret::new(text)))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("wJalrXUtnFEMI");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "wJalrXUtnFEMI");
    }
}
