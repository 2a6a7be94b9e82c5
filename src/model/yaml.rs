//! Reading the YAML files camwatch takes (config, rules, rule tests), with errors located for the
//! person who has to fix them.
//!
//! These files may come from a pull request or a shared pack, so reading them is bounded: a file
//! is at most [`MAX_YAML_BYTES`], and YAML aliases (`*name`) are refused before parsing. An alias
//! replays its anchored node wherever it stands; a few kilobytes of nested aliases (the "billion
//! laughs") expand to gigabytes, and none of camwatch's files needs them.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error in a YAML file camwatch reads, located for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

impl FileError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), line: None, column: None, message: message.into() }
    }

    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self { file: file.to_path_buf(), line: Some(line), column: Some(column), message: message.into() }
    }

    /// From a YAML deserialisation error, keeping its location.
    pub fn yaml(file: &Path, err: &serde_norway::Error) -> Self {
        let mut message = err.to_string();
        // serde_norway appends " at line L column C"; the location is reported in front instead.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        match err.location() {
            Some(loc) => Self::at(file, loc.line(), loc.column(), message),
            None => Self::new(file, message),
        }
    }
}

/// Largest YAML file read (the shipped packs are a few kilobytes each).
pub const MAX_YAML_BYTES: u64 = 4 << 20;

/// Reads a YAML file of at most [`MAX_YAML_BYTES`].
pub fn read_text(path: &Path) -> Result<String, FileError> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    let mut text = String::new();
    f.take(MAX_YAML_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_YAML_BYTES {
        return Err(FileError::new(path, format!("larger than {} MiB", MAX_YAML_BYTES >> 20)));
    }
    Ok(text)
}

/// Reads a YAML file into `T`. An empty file is `T::default()`.
pub fn read_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, FileError> {
    parse_yaml(path, &read_text(path)?)
}

pub fn parse_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path, text: &str) -> Result<T, FileError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    if text.len() as u64 > MAX_YAML_BYTES {
        return Err(FileError::new(path, format!("larger than {} MiB", MAX_YAML_BYTES >> 20)));
    }
    if let Some((line, column)) = first_alias(text) {
        return Err(FileError::at(
            path,
            line,
            column,
            "YAML aliases (*name) are not accepted: write the value out (quote a string that starts with *)",
        ));
    }
    serde_norway::from_str(text).map_err(|e| FileError::yaml(path, &e))
}

/// Where the first alias (`*name`) stands, 1-based, if any. A small scanner, deliberately
/// conservative: outside quotes, comments and block scalars (`|`, `>`), a `*` followed by a
/// non-space character where a node starts (at the start of a line or after `-`, `:`, `?`,
/// `[`, `{` or `,`) is an alias, as the YAML grammar has it (a plain scalar cannot start with
/// `*`).
fn first_alias(text: &str) -> Option<(usize, usize)> {
    let mut quote: Option<char> = None;
    // Indentation of the line that opened a block scalar; deeper lines are its content.
    let mut block: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(opened) = block {
            if line.trim().is_empty() || indent > opened {
                continue;
            }
            block = None;
        }
        let mut prev: Option<char> = None;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match quote {
                Some('\'') if c == '\'' => quote = None,
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some('"') if c == '"' => quote = None,
                Some(_) => {}
                None => match c {
                    '#' if prev.is_none_or(char::is_whitespace) => break,
                    '\'' | '"' if node_start(prev) => quote = Some(c),
                    '*' if node_start(prev)
                        && chars.peek().is_some_and(|(_, next)| !next.is_whitespace()) =>
                    {
                        return Some((n + 1, i + 1));
                    }
                    '|' | '>' if node_start(prev) => {
                        // A block scalar's header ends the line (modifiers and a comment aside).
                        let rest = line[i + 1..].split('#').next().unwrap_or_default().trim();
                        if rest.chars().all(|c| matches!(c, '+' | '-' | '1'..='9')) {
                            block = Some(indent);
                            break;
                        }
                    }
                    _ => {}
                },
            }
            if !c.is_whitespace() {
                prev = Some(c);
            } else if quote.is_none() && prev.is_some_and(|p| matches!(p, '-' | ':' | '?' | '[' | '{' | ','))
            {
                // Keep the indicator as the last significant character across the space after it.
            } else if quote.is_none() {
                prev = prev.map(|_| ' ');
            }
        }
    }
    None
}

/// Whether a node may start after `prev` (the last significant character on the line).
fn node_start(prev: Option<char>) -> bool {
    prev.is_none_or(|p| matches!(p, '-' | ':' | '?' | '[' | '{' | ','))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_found_and_everything_else_passes() {
        for (text, want) in [
            ("a: &x [1, 2]\nb: *x\n", Some((2, 4))),
            ("list:\n  - *x\n", Some((2, 5))),
            ("a: [1, *x]\n", Some((1, 8))),
            ("a: {k: *x}\n", Some((1, 8))),
            ("items: ['*.hik-connect.com', \"*.ys7.com\"]\n", None),
            ("- '*.ezvizlife.com'\n", None),
            ("a: 2 * 3\n", None),
            ("a: b*c\n", None),
            ("a: 1 # see *x\n", None),
            ("description: >\n  *bold* text\n  more\nb: 1\n", None),
            ("description: |-\n  *x\nb: *y\n", Some((3, 4))),
            ("a: \"she said \\\" *x\"\n", None),
            ("a: * \n", None),
        ] {
            assert_eq!(first_alias(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_billion_laughs_is_refused_before_it_expands() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..30 {
            let refs: Vec<String> = (0..10).map(|_| format!("*a{}", i - 1)).collect();
            text.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
        }
        let err = parse_yaml::<serde_json::Value>(Path::new("bomb.yaml"), &text).err();
        let err = err.unwrap_or_else(|| panic!("a billion laughs was accepted"));
        assert_eq!((err.line, err.column), (Some(2), Some(10)), "{err}");
        assert!(err.message.contains("aliases"), "{err}");
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, "a: 1\n".repeat((MAX_YAML_BYTES / 5 + 1) as usize))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = read_yaml::<serde_json::Value>(&path).err().unwrap_or_else(|| panic!("accepted"));
        assert!(err.message.contains("larger than"), "{err}");
    }
}
