//! Datasets in FiftyOne's formats: the label model, view stages, the expression language and
//! the stores that read and write them.

pub mod dir;
pub mod ejson;
pub mod expr;
pub mod fields;
pub mod labels;
pub mod mask;
pub mod media;
pub mod view;
