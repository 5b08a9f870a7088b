//! Diagnostics for configuration and policy files: every error carries its file and line (and
//! column), so an operator can fix them all from one run.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is: errors stop a load, warnings are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One error or warning in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the file as a whole.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// An error at byte `offset` of `source`.
    pub fn at(file: &Path, source: &str, offset: usize, message: impl Into<String>) -> Diagnostic {
        let (line, column) = line_col(source, offset);
        Diagnostic::line_col(file, line, column, message)
    }

    /// An error about the file as a whole (missing, unreadable).
    pub fn file(file: &Path, message: impl Into<String>) -> Diagnostic {
        Diagnostic::line_col(file, 0, 0, message)
    }

    /// An error at a 1-based line and column.
    pub fn line_col(
        file: &Path,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The same diagnostic as a warning.
    pub fn warning(mut self) -> Diagnostic {
        self.severity = Severity::Warning;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {level}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {level}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
/// One lookup scans the text before `offset`; for many lookups in one text, [`LineIndex`].
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Where each line of a text starts, to turn many offsets into lines and columns in
/// logarithmic time each (a policy of 100,000 statements has a position per pattern).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line and column (in characters) of `offset` in `source`, the text the
    /// index was built from.
    pub fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let start = self.starts[line - 1];
        let column = source
            .get(start..offset)
            .map_or(offset - start, |text| text.chars().count());
        (line, column + 1)
    }
}

#[cfg(test)]
#[test]
fn the_line_index_agrees_with_line_col() {
    let text = "ab\n\nçd\ne";
    let index = LineIndex::new(text);
    for offset in (0..=text.len()).filter(|&o| text.is_char_boundary(o)) {
        assert_eq!(
            index.line_col(text, offset),
            line_col(text, offset),
            "{offset}"
        );
    }
    assert_eq!(index.line_col(text, 4), (3, 1));
    assert_eq!(index.line_col(text, 6), (3, 2), "columns count characters");
}

/// All the diagnostics of a failed load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
        assert_eq!(line_col(src, 1000), (3, 1));
    }

    #[test]
    fn display_names_file_and_line() {
        let d = Diagnostic::at(Path::new("c.toml"), "x\ny", 2, "bad");
        assert_eq!(d.to_string(), "c.toml:2:1: error: bad");
        assert_eq!(
            Diagnostic::file(Path::new("p"), "missing").to_string(),
            "p: error: missing"
        );
    }
}
