//! Media dimensions: from a sample's `metadata`, else from the file header (never decoding the
//! whole image, so sizing a large dataset costs a few bytes per file).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
}

/// A media file whose size cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} of {}: {reason}", path.display())]
pub struct MediaError {
    /// What was being read (`the size`, `the video metadata`).
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Dimensions recorded in a sample's `metadata` (`width`/`height` for images,
/// `frame_width`/`frame_height` for videos), when both are present and positive.
pub fn from_metadata(metadata: Option<&Value>) -> Option<Dimensions> {
    let m: &Map<String, Value> = metadata?.as_object()?;
    let pick = |a: &str, b: &str| {
        m.get(a)
            .or_else(|| m.get(b))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    Some(Dimensions {
        width: pick("width", "frame_width")?,
        height: pick("height", "frame_height")?,
    })
}

/// Dimensions from the image file's header (PNG, JPEG, GIF, BMP, WebP, TIFF, ...).
pub fn from_file(path: &Path) -> Result<Dimensions, MediaError> {
    let err = |reason: String| MediaError {
        what: "the size",
        path: path.to_owned(),
        reason,
    };
    let size = imagesize::size(path).map_err(|e| match e {
        imagesize::ImageError::IoError(io) => err(io.to_string()),
        imagesize::ImageError::NotSupported => err("not a supported image format".into()),
        imagesize::ImageError::CorruptedImage => err("corrupted image header".into()),
    })?;
    let conv = |v: usize| u32::try_from(v).map_err(|_| err(format!("dimension {v} too large")));
    Ok(Dimensions {
        width: conv(size.width)?,
        height: conv(size.height)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_metadata_first() {
        let m = json!({"_cls": "ImageMetadata", "width": 64, "height": 48});
        assert_eq!(
            from_metadata(Some(&m)),
            Some(Dimensions {
                width: 64,
                height: 48
            })
        );
        let v = json!({"_cls": "VideoMetadata", "frame_width": 320, "frame_height": 240});
        assert_eq!(
            from_metadata(Some(&v)),
            Some(Dimensions {
                width: 320,
                height: 240
            })
        );
        assert_eq!(from_metadata(Some(&json!(null))), None);
        assert_eq!(from_metadata(Some(&json!({"width": 3}))), None);
    }

    #[test]
    fn reads_png_header() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fiftyone-1.22.1/image-all-label-types/data/img0.png");
        assert_eq!(
            from_file(&p).unwrap(),
            Dimensions {
                width: 64,
                height: 48
            }
        );
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.png");
        std::fs::write(&p, b"not an image").unwrap();
        let e = from_file(&p).unwrap_err().to_string();
        assert!(e.contains("bad.png"), "{e}");
        let e = from_file(&dir.path().join("missing.jpg"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.jpg"), "{e}");
    }
}
