//! The one rule for masks, whatever the backend (docs/masks.md):
//!
//! - An instance mask (a detection's box-sized `mask`) is a set of pixels: any nonzero
//!   element is set, whatever its dtype (bool, integers, floats alike, as NumPy's
//!   `mask.astype(bool)` and FiftyOne read it).
//! - A segmentation mask holds class values: every element must be a whole non-negative
//!   number (an integer dtype, or a float holding one such as `2.0`); 0 is the background.
//!   Any other value (`0.5`, `-1`, NaN) is refused with an error naming the pixel, as a
//!   probability map is not a segmentation and thresholding it would make up classes.
//!
//! An instance is placed on the image at its box's top-left rounded to the nearest pixel,
//! and a detection without a mask is its rounded box, filled ([`instance_box`]).

use super::ImageSize;
use super::geometry::{bounding_box, pixel, relative};
use crate::dataset::mask::{Dtype, Mask};
use serde_json::Value;

/// A binary mask over a pixel box of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxMask {
    /// Left column of the box (pixels).
    pub left: u32,
    /// Top row of the box (pixels).
    pub top: u32,
    /// Box width in pixels (at least 1).
    pub width: usize,
    /// Box height in pixels (at least 1).
    pub height: usize,
    /// `width * height` pixels, row by row.
    pub bits: Vec<bool>,
}

impl BoxMask {
    /// A FiftyOne instance mask (box-sized) placed at `(left, top)`.
    pub fn from_instance_mask(mask: &Mask, left: u32, top: u32) -> Result<BoxMask, String> {
        let (height, width) = hw(mask)?;
        Ok(BoxMask {
            left,
            top,
            width,
            height,
            bits: instance_bits(mask),
        })
    }

    /// The FiftyOne instance mask (bool, box-sized).
    pub fn to_instance_mask(&self) -> Mask {
        Mask {
            shape: vec![self.height, self.width],
            dtype: Dtype::Bool,
            data: self.bits.iter().map(|&b| u8::from(b)).collect(),
        }
    }

    /// The pixels of a `width` × `height` image (row by row) where `hit` holds, cropped to
    /// their tight box; `None` when there are none.
    pub fn tight(width: usize, height: usize, hit: impl Fn(usize) -> bool) -> Option<BoxMask> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for i in (0..width * height).filter(|&i| hit(i)) {
            let (x, y) = (i % width, i / width);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x + 1);
            y1 = y1.max(y + 1);
        }
        if x0 == usize::MAX {
            return None;
        }
        let mut bits = Vec::with_capacity((x1 - x0) * (y1 - y0));
        for y in y0..y1 {
            bits.extend((x0..x1).map(|x| hit(y * width + x)));
        }
        Some(BoxMask {
            left: x0 as u32,
            top: y0 as u32,
            width: x1 - x0,
            height: y1 - y0,
            bits,
        })
    }

    /// The box as a relative FiftyOne `bounding_box`.
    pub fn bounding_box(&self, size: ImageSize) -> [f64; 4] {
        let [x, y] = relative(f64::from(self.left), f64::from(self.top), size);
        let [w, h] = relative(self.width as f64, self.height as f64, size);
        [x, y, w, h]
    }

    /// Sets the mask's pixels to `value` in an image-sized canvas (row by row); what lies
    /// outside the image is left out.
    pub fn paint<T: Copy>(&self, canvas: &mut [T], size: ImageSize, value: T) {
        let (w, h) = (size.width as usize, size.height as usize);
        for r in 0..self.height {
            for c in 0..self.width {
                let (y, x) = (self.top as usize + r, self.left as usize + c);
                if self.bits[r * self.width + c] && y < h && x < w {
                    canvas[y * w + x] = value;
                }
            }
        }
    }

    /// The mask placed on the whole image, row by row.
    pub fn full(&self, size: ImageSize) -> Vec<bool> {
        let mut full = vec![false; size.width as usize * size.height as usize];
        self.paint(&mut full, size, true);
        full
    }
}

/// A 2-D mask's `(height, width)`.
pub fn hw(mask: &Mask) -> Result<(usize, usize), String> {
    match mask.shape.as_slice() {
        [h, w] => Ok((*h, *w)),
        s => Err(format!("mask of shape {s:?} is not 2-D")),
    }
}

/// Element `i` as a number (exact for every dtype but the largest 64-bit integers).
fn element(m: &Mask, i: usize) -> f64 {
    let s = m.dtype.size();
    let b = &m.data[i * s..(i + 1) * s];
    let eight = || {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        a
    };
    match m.dtype {
        Dtype::Bool | Dtype::U8 => f64::from(b[0]),
        Dtype::U16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
        Dtype::I32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::I64 => i64::from_le_bytes(eight()) as f64,
        Dtype::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::F64 => f64::from_le_bytes(eight()),
    }
}

/// An instance mask's pixels, row by row: any nonzero element is set.
pub fn instance_bits(mask: &Mask) -> Vec<bool> {
    (0..mask.len()).map(|i| element(mask, i) != 0.0).collect()
}

/// A segmentation mask's class values, row by row; an element that is no whole
/// non-negative number is refused, naming its pixel.
pub fn class_values(mask: &Mask) -> Result<Vec<u64>, String> {
    let (_, w) = hw(mask)?;
    (0..mask.len())
        .map(|i| {
            let v = element(mask, i);
            if v >= 0.0 && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(format!(
                    "segmentation mask value {v} at row {}, column {} is not a class value (a whole non-negative number); a {} mask must hold class values, not scores",
                    i / w.max(1),
                    i % w.max(1),
                    mask.dtype.numpy_name()
                ))
            }
        })
        .collect()
}

/// The distinct nonzero values, ascending.
pub fn classes_present(values: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = values.iter().copied().filter(|&v| v != 0).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// A detection of an instances field as pixels: its mask at its box's rounded top-left, or
/// without a mask its rounded box filled (at least a pixel, at most the image).
pub fn instance_box(label: &Value, size: ImageSize) -> Result<BoxMask, String> {
    let [x, y, w, h] = bounding_box(label).ok_or("invalid bounding_box")?;
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    let (left, top) = (pixel(x * sw), pixel(y * sh));
    match label.get("mask").filter(|v| !v.is_null()) {
        Some(m) => {
            let mask = Mask::from_ejson(m).map_err(|e| e.to_string())?;
            BoxMask::from_instance_mask(&mask, left, top)
        }
        None => {
            let bw = (w * sw).round().clamp(1.0, sw.max(1.0)) as usize;
            let bh = (h * sh).round().clamp(1.0, sh.max(1.0)) as usize;
            Ok(BoxMask {
                left,
                top,
                width: bw,
                height: bh,
                bits: vec![true; bw * bh],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mask(dtype: Dtype, values: &[f64]) -> Mask {
        let data = values
            .iter()
            .flat_map(|&v| match dtype {
                Dtype::Bool | Dtype::U8 => vec![v as u8],
                Dtype::I32 => (v as i32).to_le_bytes().to_vec(),
                Dtype::F32 => (v as f32).to_le_bytes().to_vec(),
                Dtype::F64 => v.to_le_bytes().to_vec(),
                _ => unreachable!(),
            })
            .collect();
        Mask {
            shape: vec![2, 2],
            dtype,
            data,
        }
    }

    #[test]
    fn instance_masks_set_every_nonzero_element_of_any_dtype() {
        let want = vec![false, true, true, false];
        for d in [Dtype::Bool, Dtype::U8, Dtype::I32, Dtype::F32, Dtype::F64] {
            let v = if d == Dtype::Bool { 1.0 } else { 3.0 };
            assert_eq!(instance_bits(&mask(d, &[0.0, 1.0, v, 0.0])), want, "{d:?}");
        }
        assert_eq!(
            instance_bits(&mask(Dtype::F32, &[0.0, 0.25, -1.0, 0.0])),
            want
        );
    }

    #[test]
    fn segmentation_masks_hold_whole_class_values_or_are_refused() {
        for d in [Dtype::U8, Dtype::I32, Dtype::F32, Dtype::F64] {
            assert_eq!(
                class_values(&mask(d, &[0.0, 2.0, 2.0, 1.0])),
                Ok(vec![0, 2, 2, 1])
            );
        }
        let e = class_values(&mask(Dtype::F32, &[0.0, 0.5, 1.0, 1.0])).unwrap_err();
        assert!(e.contains("0.5 at row 0, column 1"), "{e}");
        assert!(e.contains("float32"), "{e}");
        assert!(class_values(&mask(Dtype::I32, &[0.0, -1.0, 0.0, 0.0])).is_err());
        assert!(class_values(&mask(Dtype::F64, &[f64::NAN, 0.0, 0.0, 0.0])).is_err());
        assert_eq!(classes_present(&[0, 2, 2, 1]), vec![1, 2]);
    }

    #[test]
    fn instances_sit_at_their_rounded_box() {
        let size = ImageSize {
            width: 10,
            height: 10,
        };
        let m = mask(Dtype::Bool, &[1.0, 0.0, 0.0, 1.0]);
        let l = json!({"bounding_box": [0.26, 0.34, 0.2, 0.2], "mask": m.to_ejson()});
        let b = instance_box(&l, size).unwrap();
        assert_eq!((b.left, b.top, b.width, b.height), (3, 3, 2, 2));
        assert_eq!(b.bounding_box(size), [0.3, 0.3, 0.2, 0.2]);
        let full = b.full(size);
        assert!(full[3 * 10 + 3] && full[4 * 10 + 4] && !full[3 * 10 + 4]);
        assert_eq!(BoxMask::tight(10, 10, |i| full[i]), Some(b.clone()));
        assert_eq!(b.to_instance_mask().data, vec![1, 0, 0, 1]);
        // No mask: the rounded box, filled, at least a pixel.
        let filled = instance_box(&json!({"bounding_box": [0.0, 0.0, 0.01, 0.25]}), size).unwrap();
        assert_eq!((filled.width, filled.height), (1, 3));
        assert!(filled.bits.iter().all(|b| *b));
        assert!(instance_box(&json!({"bounding_box": [0.0, 0.0]}), size).is_err());
    }
}
