//! CVAT backend: the pure parts (label specs, annotation conversion, mask RLE). The HTTP
//! client comes on top of these and only moves JSON.

pub mod convert;
pub mod labels;
pub mod rle;
