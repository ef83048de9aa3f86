//! Datasets in FiftyOne's formats: the label model, view stages, the expression language and
//! the stores that read and write them.
//!
//! - [`store`]: the dataset store interface ([`store::Store`]) the engine uses.
//! - [`change`]: what a merge changes, as store operations every store takes.
//! - [`dir`]: the `dir` store ([`dir::Dataset`]), FiftyOne's `FiftyOneDataset` directory format.
//! - [`mongodb`]: the `mongodb` store, a live FiftyOne database read into a [`dir::Dataset`].
//! - [`labels`]: typed labels ([`labels::Label`]) with lossless JSON conversions.
//! - [`field_path`]: where a field lives ([`FieldPath`]: sample or frame) and frame numbers.
//! - [`video`]: video metadata (frame count, size, rate) from `metadata` or the MP4 file.
//! - [`working_set`]: what a command reads of a dataset ([`working_set::WorkingSet`]).
//! - [`view`]: view stages ([`view::apply`]) → selected sample and label ids.
//! - [`expr`]: the `where`/`expr` language ([`expr::parse`], [`expr::eval`]).
//! - [`ejson`], [`mask`], [`mask_path`], [`media`], [`fields`]: Extended JSON and ObjectIds,
//!   zlib'd npy masks, FiftyOne's PNG mask files,
//!   media sizes, FiftyOne field declarations.

pub mod change;
pub mod dir;
pub mod ejson;
pub mod expr;
pub mod field_path;
pub mod fields;
pub mod labels;
pub mod mask;
pub mod mask_path;
pub mod media;
pub mod mongodb;
mod rows;
mod scan;
pub mod sendable;
pub mod store;
pub mod video;
pub mod view;
pub mod working_set;

pub use field_path::{FieldPath, FrameNumber, Level};
