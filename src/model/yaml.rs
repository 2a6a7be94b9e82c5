//! Reading the YAML files camwatch takes (config, rules, rule tests), with errors located for the
//! person who has to fix them.

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

/// Reads a YAML file into `T`. An empty file is `T::default()`.
pub fn read_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path) -> Result<T, FileError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("cannot read: {e}")))?;
    parse_yaml(path, &text)
}

pub fn parse_yaml<T: serde::de::DeserializeOwned + Default>(path: &Path, text: &str) -> Result<T, FileError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_norway::from_str(text).map_err(|e| FileError::yaml(path, &e))
}
