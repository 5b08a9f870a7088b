//! IAM's wildcard matching: `*` matches any run of characters (including none), `?` exactly
//! one character, everything else (`[`, `{`, `\`, …) itself. `**` is two `*`, as in IAM: there
//! is no recursive-glob meaning.
//!
//! Linear-time with single-star backtracking, no allocation; `?` steps over a whole UTF-8
//! character. Hand-written rather than globset because IAM's syntax is not glob syntax and
//! this runs on every request.

/// Whether `text` matches `pattern` (case-sensitive; callers lowercase for case-insensitivity).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // After a `*`: where the pattern resumes, and the text position that `*` has consumed to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ti));
            }
            Some(b'?') => {
                pi += 1;
                ti += char_len(t[ti]);
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((resume, consumed)) => {
                    let next = consumed + char_len(t[consumed]);
                    star = Some((resume, next));
                    pi = resume;
                    ti = next;
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// Whether `pattern` contains a wildcard at all.
pub fn is_literal(pattern: &str) -> bool {
    !pattern.bytes().any(|b| b == b'*' || b == b'?')
}

/// Length of the UTF-8 character that starts with `lead`.
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        let yes = [
            ("*", ""),
            ("*", "anything"),
            ("a*", "a"),
            ("a*c", "abbbc"),
            ("*c", "abc"),
            ("a?c", "abc"),
            ("a??", "abc"),
            ("**", "x"),
            ("a*b*c", "aXbYc"),
            ("a*b*c", "abcbc"),
            ("?", "ö"),
            ("?", "€"),
            ("?", "😀"),
            ("a?c", "a€c"),
            ("a?c", "a😀c"),
            ("*€", "x€€"),
            ("d?m", "döm"),
            ("*ö", "xxö"),
            ("/domain/*", "/domain/tenant-a/x"),
        ];
        for (p, t) in yes {
            assert!(matches(p, t), "{p} ~ {t}");
        }
        let no = [
            ("a", "b"),
            ("a?c", "ac"),
            ("?", ""),
            ("??", "ö"),
            ("??", "€"),
            ("??", "😀"),
            ("a*c", "abcd"),
            ("abc", "ab"),
            ("ab", "abc"),
            ("[a]", "a"),
            ("{a,b}", "a"),
            ("a\\*", "ab"),
        ];
        for (p, t) in no {
            assert!(!matches(p, t), "{p} !~ {t}");
        }
    }

    #[test]
    fn other_glob_syntax_is_literal() {
        assert!(matches("[a]", "[a]"));
        assert!(matches("{a,b}", "{a,b}"));
        assert!(matches("a\\b", "a\\b"));
    }

    #[test]
    fn literal_detection() {
        assert!(is_literal("swf:PollForActivityTask"));
        assert!(!is_literal("swf:Poll*") && !is_literal("a?"));
    }
}
