//! FiftyOne's on-disk masks: a label's `mask_path` names a PNG file (relative paths are
//! relative to the dataset directory, as in a `FiftyOneDataset` export) that FiftyOne reads
//! with OpenCV's `IMREAD_UNCHANGED` and writes from the array cast to uint8 (or uint16 when a
//! value exceeds 255). Runs see such a mask inline (read once where labels enter a run);
//! a merged mask goes back to a new PNG file beside the old one, which stays untouched.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::mask::{Dtype, Mask};

/// A mask file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MaskFileError {
    #[error("mask_path {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("mask of label {label}: {message}")]
    Mask { label: String, message: String },
}

fn file_error(path: &Path, message: impl ToString) -> MaskFileError {
    MaskFileError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A grayscale PNG as a 2-D mask: 8-bit as uint8, 16-bit as uint16, as OpenCV's
/// `IMREAD_UNCHANGED` reads them; 1/2/4-bit grayscale is widened to uint8. Colour, palette
/// and alpha images (FiftyOne's RGB masks) are refused.
pub fn read_png(bytes: &[u8]) -> Result<Mask, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("image too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if info.color_type != png::ColorType::Grayscale {
        return Err(format!(
            "a {:?} image; only grayscale masks (one value per pixel) are supported",
            info.color_type
        ));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let pixels = &buf[..info.buffer_size()];
    let (dtype, data) = match info.bit_depth {
        png::BitDepth::Sixteen => (
            Dtype::U16,
            // PNG stores 16-bit samples big-endian; masks hold little-endian elements.
            pixels.chunks_exact(2).flat_map(|b| [b[1], b[0]]).collect(),
        ),
        _ => (Dtype::U8, pixels.to_vec()),
    };
    Ok(Mask {
        shape: vec![h, w],
        dtype,
        data,
    })
}

/// A 2-D mask as a grayscale PNG, as FiftyOne writes one: uint8 and uint16 as they are,
/// other integer types (bool included) cast to uint8, or to uint16 when a value exceeds 255.
pub fn write_png(mask: &Mask) -> Result<Vec<u8>, String> {
    let [h, w] = mask.shape.as_slice() else {
        return Err(format!("a mask of shape {:?} is not 2-D", mask.shape));
    };
    let values: Vec<u64> = (0..*h)
        .flat_map(|r| (0..*w).map(move |c| (r, c)))
        .map(|(r, c)| mask.get(r, c).ok_or("a float mask is not integral"))
        .collect::<Result<_, _>>()?;
    let max = values.iter().copied().max().unwrap_or(0);
    let wide = mask.dtype == Dtype::U16 || (mask.dtype != Dtype::U8 && max > 255);
    if max > u64::from(u16::MAX) {
        return Err(format!("mask value {max} does not fit a 16-bit PNG"));
    }
    let (depth, data): (png::BitDepth, Vec<u8>) = if wide {
        (
            png::BitDepth::Sixteen,
            values
                .iter()
                .flat_map(|v| (*v as u16).to_be_bytes())
                .collect(),
        )
    } else {
        (
            png::BitDepth::Eight,
            values.iter().map(|v| *v as u8).collect(),
        )
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, *w as u32, *h as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(depth);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&data).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Where a `mask_path` points: as written when absolute, else under the dataset directory.
fn resolve(dataset_dir: &Path, mask_path: &str) -> PathBuf {
    let p = Path::new(mask_path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dataset_dir.join(p)
    }
}

fn path_of(label: &Value) -> Option<&str> {
    label.get("mask_path").and_then(Value::as_str)
}

fn has_inline(label: &Value) -> bool {
    label.get("mask").is_some_and(|m| !m.is_null())
}

/// A label's mask as FiftyOne's `get_mask()` gives it: the inline `mask`, else the PNG file
/// at `mask_path`; `None` when it has neither.
pub fn mask_of(label: &Value, dataset_dir: &Path) -> Result<Option<Mask>, MaskFileError> {
    if let Some(m) = label.get("mask").filter(|m| !m.is_null()) {
        let id = super::ejson::oid_str(&label["_id"])
            .unwrap_or("?")
            .to_string();
        return Mask::from_ejson(m)
            .map(Some)
            .map_err(|e| MaskFileError::Mask {
                label: id,
                message: e.to_string(),
            });
    }
    let Some(rel) = path_of(label) else {
        return Ok(None);
    };
    let path = resolve(dataset_dir, rel);
    let bytes = std::fs::read(&path).map_err(|e| file_error(&path, e))?;
    read_png(&bytes).map(Some).map_err(|e| file_error(&path, e))
}

/// A label as a run sees it: a `mask_path` mask read into an inline `mask` (and `mask_path`
/// dropped), so uploads, digests and merges compare pixels, wherever the mask is stored. An
/// instance mask (a `Detection`'s) is boolean, as FiftyOne keeps instance masks.
pub fn inline(label: &Value, dataset_dir: &Path) -> Result<Value, MaskFileError> {
    if !on_disk(label) {
        return Ok(label.clone());
    }
    let mut out = label.clone();
    if let (Some(mut m), Some(o)) = (mask_of(label, dataset_dir)?, out.as_object_mut()) {
        if label.get("_cls").and_then(Value::as_str) == Some("Detection") {
            m = to_bool(&m);
        }
        o.remove("mask_path");
        o.insert("mask".into(), m.to_ejson());
    }
    Ok(out)
}

fn to_bool(m: &Mask) -> Mask {
    let s = m.dtype.size();
    Mask {
        shape: m.shape.clone(),
        dtype: Dtype::Bool,
        data: m
            .data
            .chunks_exact(s)
            .map(|b| u8::from(b.iter().any(|x| *x != 0)))
            .collect(),
    }
}

/// The labels of a field value (`list_key` names the list of a container; none for a single
/// label): a new value with their `mask_path` masks inline, or `None` when none has one.
pub fn inline_field(
    value: Option<&Value>,
    list_key: Option<&str>,
    dataset_dir: &Path,
) -> Result<Option<Value>, MaskFileError> {
    let Some(v) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match list_key {
        None if on_disk(v) => inline(v, dataset_dir).map(Some),
        None => Ok(None),
        Some(key) => {
            let Some(labels) = v.get(key).and_then(Value::as_array) else {
                return Ok(None);
            };
            if !labels.iter().any(on_disk) {
                return Ok(None);
            }
            let mut out = v.clone();
            out[key] = Value::Array(
                labels
                    .iter()
                    .map(|l| inline(l, dataset_dir))
                    .collect::<Result<_, _>>()?,
            );
            Ok(Some(out))
        }
    }
}

/// [`store`] for every label of a merged field value whose dataset label (in `base`, by id)
/// kept its mask in a file.
pub fn store_field(
    value: &mut Value,
    base: Option<&Value>,
    list_key: Option<&str>,
    dataset_dir: &Path,
    field: &str,
) -> Result<(), MaskFileError> {
    let originals: Vec<&Value> = match (base, list_key) {
        (Some(b), Some(key)) => b
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter(|l| on_disk(l)).collect())
            .unwrap_or_default(),
        (Some(b), None) if on_disk(b) => vec![b],
        _ => Vec::new(),
    };
    if originals.is_empty() {
        return Ok(());
    }
    let labels: Vec<&mut Value> = match list_key {
        Some(key) => match value.get_mut(key).and_then(Value::as_array_mut) {
            Some(a) => a.iter_mut().collect(),
            None => Vec::new(),
        },
        None => vec![value],
    };
    for l in labels {
        if let Some(o) = originals.iter().find(|o| o.get("_id") == l.get("_id")) {
            store(l, o, dataset_dir, field)?;
        }
    }
    Ok(())
}

/// Whether a label keeps its mask in a file.
pub fn on_disk(label: &Value) -> bool {
    !has_inline(label) && path_of(label).is_some()
}

/// Put a merged label's inline mask back on disk, where its dataset label (`original`) kept
/// it in a file: the same `mask_path` when the pixels did not change, else a new PNG under
/// `fields/<field>/` of the dataset (named by label id and content, so merging again writes
/// nothing new) — the old file stays as it was.
pub fn store(
    label: &mut Value,
    original: &Value,
    dataset_dir: &Path,
    field: &str,
) -> Result<(), MaskFileError> {
    let Some(old_path) = path_of(original).filter(|_| on_disk(original)) else {
        return Ok(());
    };
    let Some(m) = label.get("mask").filter(|m| !m.is_null()) else {
        return Ok(());
    };
    let id = super::ejson::oid_str(&label["_id"])
        .unwrap_or("mask")
        .to_string();
    let as_mask = |e: String| MaskFileError::Mask {
        label: id.clone(),
        message: e,
    };
    let mask = Mask::from_ejson(m).map_err(|e| as_mask(e.to_string()))?;
    let old = mask_of(original, dataset_dir).ok().flatten();
    let same = old.is_some_and(|o| o.shape == mask.shape && same_values(&o, &mask));
    let rel = if same {
        old_path.to_string()
    } else {
        let png = write_png(&mask).map_err(as_mask)?;
        let digest = hex(&Sha256::digest(&png)[..6]);
        let rel = format!("fields/{field}/{id}-{digest}.png");
        let path = dataset_dir.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        }
        write_file(&path, &png)?;
        rel
    };
    if let Some(o) = label.as_object_mut() {
        o.remove("mask");
        o.insert("mask_path".into(), Value::String(rel));
    }
    Ok(())
}

fn same_values(a: &Mask, b: &Mask) -> bool {
    let [h, w] = a.shape.as_slice() else {
        return false;
    };
    (0..*h).all(|r| (0..*w).all(|c| a.get(r, c) == b.get(r, c)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write a file whole: a temporary file beside it, then a rename.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MaskFileError> {
    let tmp = path.with_extension("png.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str = "tests/fixtures/fiftyone-1.22.1/image-all-label-types";

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)
    }

    /// FiftyOne exported the same masks inline (`seg`) and as files (`seg_path`): reading the
    /// files gives the inline masks' pixels.
    #[test]
    fn fixture_mask_files_read_as_their_inline_twins() {
        let text = std::fs::read_to_string(root().join("samples.json")).unwrap();
        let samples: Value = serde_json::from_str(&text).unwrap();
        for s in samples["samples"].as_array().unwrap() {
            let file = mask_of(&s["seg_path"], &root()).unwrap().unwrap();
            let inline = mask_of(&s["seg"], &root()).unwrap().unwrap();
            assert_eq!(file.shape, inline.shape);
            assert!(
                same_values(&file, &inline),
                "{}",
                s["seg_path"]["mask_path"]
            );
        }
    }

    /// An instance mask file (0/255 or 0/1 pixels) is a boolean mask inline, as FiftyOne keeps
    /// instance masks; a segmentation's keeps its values.
    #[test]
    fn instance_masks_inline_as_booleans() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mask::zeros(vec![2, 2], Dtype::U8);
        m.data = vec![0, 255, 1, 0];
        std::fs::write(dir.path().join("m.png"), write_png(&m).unwrap()).unwrap();
        let det = json!({"_cls": "Detection", "mask_path": "m.png"});
        let seen = Mask::from_ejson(&inline(&det, dir.path()).unwrap()["mask"]).unwrap();
        assert_eq!((seen.dtype, seen.data), (Dtype::Bool, vec![0, 1, 1, 0]));
        let seg = json!({"_cls": "Segmentation", "mask_path": "m.png"});
        let seen = Mask::from_ejson(&inline(&seg, dir.path()).unwrap()["mask"]).unwrap();
        assert_eq!((seen.dtype, seen.data), (Dtype::U8, vec![0, 255, 1, 0]));
    }

    #[test]
    fn png_round_trips_8_and_16_bit() {
        for (dtype, values) in [
            (Dtype::U8, vec![0u64, 1, 2, 255, 7, 0]),
            (Dtype::U16, vec![0, 300, 65535, 1, 2, 3]),
            (Dtype::Bool, vec![0, 1, 1, 0, 0, 1]),
        ] {
            let mut m = Mask::zeros(vec![2, 3], dtype);
            for (i, v) in values.iter().enumerate() {
                let s = dtype.size();
                m.data[i * s..(i + 1) * s].copy_from_slice(&v.to_le_bytes()[..s]);
            }
            let back = read_png(&write_png(&m).unwrap()).unwrap();
            assert_eq!(back.shape, vec![2, 3]);
            assert!(same_values(&back, &m), "{dtype:?}");
        }
    }

    #[test]
    fn colour_images_and_missing_files_are_errors_naming_the_file() {
        let e = mask_of(&json!({"mask_path": "fields/none.png"}), &root()).unwrap_err();
        assert!(e.to_string().contains("fields/none.png"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let mut rgb = Vec::new();
        let mut enc = png::Encoder::new(&mut rgb, 1, 1);
        enc.set_color(png::ColorType::Rgb);
        enc.write_header()
            .unwrap()
            .write_image_data(&[1, 2, 3])
            .unwrap();
        std::fs::write(dir.path().join("rgb.png"), rgb).unwrap();
        let e = mask_of(&json!({"mask_path": "rgb.png"}), dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("rgb.png") && e.to_string().contains("grayscale"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_mask_goes_to_a_new_file_and_an_unchanged_one_keeps_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            root().join("fields/seg_path/seg0.png"),
            dir.path().join("seg0.png"),
        )
        .unwrap();
        let original = json!({"_id": {"$oid": "aaaaaaaaaaaaaaaaaaaaaaaa"}, "_cls": "Segmentation", "mask_path": "seg0.png"});
        let seen = inline(&original, dir.path()).unwrap();
        assert!(seen.get("mask_path").is_none() && seen["mask"].is_object());
        let mut same = seen.clone();
        store(&mut same, &original, dir.path(), "seg").unwrap();
        assert_eq!(same, original);
        let mut mask = Mask::from_ejson(&seen["mask"]).unwrap();
        mask.data[0] = 9;
        let mut edited = seen.clone();
        edited["mask"] = mask.to_ejson();
        store(&mut edited, &original, dir.path(), "seg").unwrap();
        let rel = edited["mask_path"].as_str().unwrap().to_string();
        assert!(
            rel.starts_with("fields/seg/aaaaaaaaaaaaaaaaaaaaaaaa-"),
            "{rel}"
        );
        assert!(edited.get("mask").is_none());
        let back = mask_of(&edited, dir.path()).unwrap().unwrap();
        assert!(same_values(&back, &mask));
        let unchanged = mask_of(&original, dir.path()).unwrap().unwrap();
        assert_eq!(
            unchanged.get(0, 0),
            Some(u64::from(Mask::from_ejson(&seen["mask"]).unwrap().data[0]))
        );
    }
}
