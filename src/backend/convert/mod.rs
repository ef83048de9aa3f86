//! The conversion layer every backend uses: FiftyOne label geometry to and from the pixel
//! and percent coordinates backends speak ([`geometry`]), the one rule for reading masks
//! ([`mask`], documented in docs/masks.md), the size of the image a label is drawn on and
//! the error a label that cannot be sent gives. A backend adapter keeps only its wire format
//! (Label Studio results, CVAT shapes, Darwin JSON); a geometry fix is made here, once.

pub mod geometry;
pub mod mask;

use crate::backend::TaskSample;

/// Pixel size of the image a label is drawn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

impl ImageSize {
    /// The size of a sample's image: its metadata, else read from the media file's header.
    pub fn of_sample(sample: &TaskSample) -> Result<ImageSize, String> {
        if let (Some(width), Some(height)) = (sample.width, sample.height) {
            return Ok(ImageSize { width, height });
        }
        let d = imagesize::size(&sample.media)
            .map_err(|e| format!("cannot read the size of {}: {e}", sample.media))?;
        Ok(ImageSize {
            width: d.width as u32,
            height: d.height as u32,
        })
    }

    /// Whether a spatial label can be placed on it (both sides known).
    pub fn is_known(self) -> bool {
        self.width > 0 && self.height > 0
    }
}

/// A label that cannot be sent to a backend, naming its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ConvertError {
    pub field: String,
    pub message: String,
}

impl ConvertError {
    /// A failure converting a label of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConvertError {
        ConvertError {
            field: field.into(),
            message: message.into(),
        }
    }
}
