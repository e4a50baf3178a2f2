//! The one error type of the ops crate: it names the offending argument.

use std::fmt;

/// An invalid argument: `arg` is the parameter's name as the caller spells
/// it, `message` says what was expected and what was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub arg: &'static str,
    pub message: String,
}

impl OpError {
    pub fn new(arg: &'static str, message: impl Into<String>) -> Self {
        Self { arg, message: message.into() }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.message)
    }
}

impl std::error::Error for OpError {}

pub type OpResult<T> = Result<T, OpError>;

/// Returns an [`OpError`] for `arg` unless `cond` holds.
pub fn ensure(cond: bool, arg: &'static str, message: impl FnOnce() -> String) -> OpResult<()> {
    if cond {
        Ok(())
    } else {
        Err(OpError::new(arg, message()))
    }
}
