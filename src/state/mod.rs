//! Run state: records and the stores that keep them.

pub mod error;
pub mod holder;
pub mod local;
pub mod lock;
pub mod pg_tls;
pub mod postgres;
pub mod record;
pub mod secrets;
pub mod store;

pub use error::StateError;
pub use holder::Holder;
pub use local::LocalStore;
pub use lock::{Lock, LockGuard, force_unlock};
pub use record::*;
pub use secrets::assert_no_secrets;
pub use store::{HeldLock, StateStore, StoreSettings};
