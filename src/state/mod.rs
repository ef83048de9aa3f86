//! Run state: records and the stores that keep them.

pub mod error;
pub mod local;
pub mod lock;
pub mod record;
pub mod secrets;

pub use error::StateError;
pub use local::LocalStore;
pub use lock::{Holder, Lock, LockGuard, force_unlock};
pub use record::*;
pub use secrets::assert_no_secrets;
