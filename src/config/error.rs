//! What loading reports: [`ConfigError`]s (which stop the agent), [`Warning`]s (which do
//! not), and the [`Diag`] that collects both across every file.

use std::fmt;
use std::path::PathBuf;

/// Something worth telling the operator that does not stop the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file it was found in.
    pub file: PathBuf,
    /// The message, naming the key.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// One configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line and column, where the parser gives them.
    pub location: Option<(usize, usize)>,
    /// 0-based flow index in the resolved list, for flow keys.
    pub flow: Option<usize>,
    /// The key, dotted as in the file (`flows[2].maxBufferAgeMillis` is `flow: Some(2)`,
    /// `key: Some("maxBufferAgeMillis")`).
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((l, c)) = self.location {
            write!(f, ":{l}:{c}")?;
        }
        if let Some(i) = self.flow {
            write!(f, ": flows[{i}]")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error found, reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Errors and warnings collected across all files.
#[derive(Debug, Default)]
pub(crate) struct Diag {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<Warning>,
}
