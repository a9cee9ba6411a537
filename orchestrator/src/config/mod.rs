//! Diagnostics for the files a user writes (inventory, scenario, its `delays:`): one [`Problem`]
//! type, one collector ([`Problems`]) that gathers every mistake instead of stopping at the first,
//! and one YAML loader ([`yaml::load`]) that turns serde's errors into problems naming the field.
//!
//! Every message reads `file:line:column: field.path: what is wrong`, so one edit fixes it.

pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

/// Everything wrong with a file, so one edit can fix all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// In file order; never empty.
    pub problems: Vec<Problem>,
}

/// One mistake in a file, located precisely enough to fix it without searching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as the caller named it.
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the whole file (unreadable, empty).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// Path of the offending field, like `hosts[2].port`; empty for the whole file.
    pub field: String,
    /// What is wrong and, where it helps, what would be valid.
    pub message: String,
}

impl ConfigError {
    /// A problem with the file as a whole (unreadable, empty).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            problems: vec![Problem {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                field: String::new(),
                message: message.into(),
            }],
        }
    }
}

/// Reads a file the user named; an unreadable file is a [`ConfigError`] like any other.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read: {e}")))
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The collector: every check reports here, and [`Problems::finish`] decides the outcome.
pub struct Problems {
    file: PathBuf,
    list: Vec<Problem>,
}

impl Problems {
    pub fn new(file: &Path) -> Problems {
        Problems {
            file: file.to_path_buf(),
            list: Vec::new(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many problems so far: a check compares it before and after to see whether a part
    /// of the file had any.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Records a problem at a YAML position.
    pub fn at(&mut self, at: Location, field: &str, message: impl Into<String>) {
        self.list.push(Problem {
            file: self.file.clone(),
            line: at.line() as usize,
            column: at.column() as usize,
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// Records a problem at the value it concerns.
    pub fn report<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.at(at.referenced, field, message);
    }

    /// Adds problems found by another checker of the same file.
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.list.extend(problems);
    }

    /// Applies `validate` to a value that may be absent, reporting its error at the value.
    pub fn check<T, U>(
        &mut self,
        value: Option<&Spanned<T>>,
        field: &str,
        validate: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        let value = value?;
        match validate(&value.value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.report(value, field, message);
                None
            }
        }
    }

    /// [`Problems::check`] for each entry of a list, naming entries `field[i]`.
    pub fn check_list<T, U>(
        &mut self,
        values: Option<&[Spanned<T>]>,
        field: &str,
        validate: impl Fn(&T) -> Result<U, String>,
    ) -> Option<Vec<U>> {
        let values = values?;
        let checked = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.check(Some(v), &format!("{field}[{i}]"), &validate));
        Some(checked.collect())
    }

    /// The problems in file order (each once), taken out.
    pub fn take(&mut self) -> Vec<Problem> {
        let mut problems = std::mem::take(&mut self.list);
        problems.sort_by_key(|p| (p.line, p.column));
        problems.dedup();
        problems
    }

    /// `value` if nothing was reported, else every problem in file order.
    pub fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError {
                problems: self.take(),
            })
        }
    }
}
