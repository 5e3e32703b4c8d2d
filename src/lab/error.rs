//! The lab core's one error type: every failure a user can cause or meet, with a message that says what to do.

use thiserror::Error;

/// Everything that can go wrong in the lab core.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum LabError {
    /// A data file exists but is not what it claims to be (truncated, wrong size, bad label, ...).
    #[error("{file}: {problem}")]
    Data { file: String, problem: String },
    /// A dataset could not be found; the message says how to get it.
    #[error("{0}")]
    DataMissing(String),
    /// A spec, link or flag is malformed or out of range.
    #[error("invalid spec: {0}")]
    Spec(String),
    /// The compute device failed (e.g. a lost GPU or a failed read); the run may retry on the CPU.
    #[error("the compute device failed: {0}")]
    Device(String),
    /// The user cancelled a long step.
    #[error("cancelled")]
    Cancelled,
    /// Reading or writing a file failed.
    #[error("{file}: {problem}")]
    Io { file: String, problem: String },
}

impl LabError {
    /// A device failure from burn (its Debug form, the one that names the cause), as one readable line:
    /// the chain's messages without the "Caused by" / "Backtrace" scaffolding or repeats.
    pub fn device_fault(e: impl std::fmt::Debug) -> Self {
        let full = format!("{e:?}");
        let mut parts: Vec<&str> = Vec::new();
        for line in full.lines().map(str::trim) {
            if line.starts_with("Backtrace") {
                break;
            }
            if line.is_empty() || line.starts_with("Caused by") || parts.contains(&line) {
                continue;
            }
            parts.push(line);
        }
        Self::Device(if parts.is_empty() { full } else { parts.join(": ") })
    }

    /// The message for someone at the page: a spec problem in its own words, without the heading the
    /// CLI gives it ("invalid spec: …"), starting with a capital.
    pub fn plain(&self) -> String {
        match self {
            Self::Spec(problem) => {
                let mut chars = problem.chars();
                chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
            }
            e => e.to_string(),
        }
    }

    pub fn data(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Data { file: file.into(), problem: problem.into() }
    }
    pub fn spec(problem: impl Into<String>) -> Self {
        Self::Spec(problem.into())
    }
    pub fn io(file: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Io { file: file.to_string(), problem: err.to_string() }
    }
}

pub type Result<T, E = LabError> = std::result::Result<T, E>;
