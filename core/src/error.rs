//! The error type shared by every Tessera crate.

/// Everything that can go wrong building or running a graph.
///
/// Messages name the array or key, the operation and the offending value so a user can
/// act on them without reading the source.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    /// The graph or an operation was given arguments that do not fit together.
    #[error("{op}: {message}")]
    Invalid {
        /// The operation that refused its input.
        op: String,
        /// What was wrong, with the values involved.
        message: String,
    },
    /// A task failed while running.
    #[error("task {key} failed: {message}")]
    TaskFailed {
        /// The key of the failed task.
        key: String,
        /// The error the task raised.
        message: String,
    },
    /// Reading or writing storage failed.
    #[error("storage {url}: {message}")]
    Storage {
        /// The store or object involved.
        url: String,
        /// What the storage layer reported.
        message: String,
    },
    /// A graph could not be serialised or deserialised.
    #[error("serialisation: {0}")]
    Serde(String),
    /// A connection to a scheduler, worker or client failed or was refused.
    #[error("connection: {0}")]
    Connection(String),
    /// The engine stopped before the computation finished.
    #[error("engine: {0}")]
    Engine(String),
}

impl Error {
    /// An [`Error::Invalid`] for operation `op`.
    pub fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { op: op.into(), message: message.into() }
    }

    /// An [`Error::Storage`] for the store at `url`.
    pub fn storage(url: impl Into<String>, message: impl ToString) -> Self {
        Error::Storage { url: url.into(), message: message.to_string() }
    }
}

/// Result with Tessera's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
