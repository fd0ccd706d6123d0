//! Errors of the trainer: the library's errors, libtorch errors, I/O with context, and the
//! trainer's own data / option / checkpoint problems (each message says what and where).

/// Any trainer failure.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Promptist(#[from] promptist::Error),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("data: {0}")]
    Data(String),
    #[error("invalid options: {0}")]
    Options(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A loss, a reward or a gradient is NaN or infinite: the run stops before the optimizer step,
    /// so the last checkpoint on disk is the last good state.
    #[error("not finite: {0}")]
    NonFinite(String),
    #[error("reference run failed: {0}")]
    External(String),
}

impl TrainError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TrainError::Io { context: context.into(), source }
    }
}

pub type Result<T> = std::result::Result<T, TrainError>;
