//! Instance and segmentation masks as FiftyOne stores them inline: `zlib.compress(<.npy bytes>)`
//! inside a BSON binary (subtype 0). We read any npy v1/v2/v3 C-order array of a fixed-size
//! numeric or bool dtype and write npy v1.0, which is what `numpy.save` produces.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::Value;

use super::ejson::Binary;

pub use super::mask_path::mask_of;

/// The element type of a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// numpy `bool` (`|b1`), what instance masks use.
    Bool,
    /// numpy `uint8` (`|u1`), what segmentation masks use.
    U8,
    /// numpy `uint16` (little endian).
    U16,
    /// numpy `int32` (little endian).
    I32,
    /// numpy `int64` (little endian).
    I64,
    /// numpy `float32` (little endian).
    F32,
    /// numpy `float64` (little endian).
    F64,
}

impl Dtype {
    /// The npy `descr` string.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::Bool => "|b1",
            Dtype::U8 => "|u1",
            Dtype::U16 => "<u2",
            Dtype::I32 => "<i4",
            Dtype::I64 => "<i8",
            Dtype::F32 => "<f4",
            Dtype::F64 => "<f8",
        }
    }

    /// numpy's name for it (`str(arr.dtype)`).
    pub fn numpy_name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::U8 => "uint8",
            Dtype::U16 => "uint16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 => 1,
            Dtype::U16 => 2,
            Dtype::I32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::F64 => 8,
        }
    }

    fn from_descr(d: &str) -> Option<Dtype> {
        Some(match d {
            "|b1" | "b1" | "?" => Dtype::Bool,
            "|u1" | "u1" | "<u1" => Dtype::U8,
            "<u2" => Dtype::U16,
            "<i4" => Dtype::I32,
            "<i8" => Dtype::I64,
            "<f4" => Dtype::F32,
            "<f8" => Dtype::F64,
            _ => return None,
        })
    }
}

/// A decoded mask: shape (rows first), dtype and the raw little-endian elements in C order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// Array shape, e.g. `[height, width]`.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: Dtype,
    /// `shape.product() * dtype.size()` bytes, C order.
    pub data: Vec<u8>,
}

/// A mask that cannot be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// The `$binary` wrapper is malformed.
    #[error(transparent)]
    Binary(#[from] super::ejson::BinaryError),
    /// The bytes are not zlib data.
    #[error("mask is not zlib-compressed data: {0}")]
    Zlib(std::io::Error),
    /// The decompressed bytes are not an npy array we understand.
    #[error("mask is not a valid .npy array: {0}")]
    Npy(String),
}

impl Mask {
    /// A mask of this shape and dtype filled with zeros.
    pub fn zeros(shape: Vec<usize>, dtype: Dtype) -> Mask {
        let n: usize = shape.iter().product();
        Mask {
            data: vec![0; n * dtype.size()],
            shape,
            dtype,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the mask has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes a label's `mask` value (`{"$binary": ...}`).
    pub fn from_ejson(v: &Value) -> Result<Mask, MaskError> {
        let bin = Binary::from_ejson(v)?;
        Mask::from_zlib_npy(&bin.bytes)
    }

    /// Encodes as FiftyOne does: `{"$binary": {"base64": zlib(npy), "subType": "00"}}`.
    pub fn to_ejson(&self) -> Value {
        Binary {
            subtype: 0,
            bytes: self.to_zlib_npy(),
        }
        .to_ejson()
    }

    /// Decodes `zlib.compress(npy bytes)`.
    pub fn from_zlib_npy(bytes: &[u8]) -> Result<Mask, MaskError> {
        let mut npy = Vec::new();
        ZlibDecoder::new(bytes)
            .read_to_end(&mut npy)
            .map_err(MaskError::Zlib)?;
        Mask::from_npy(&npy)
    }

    /// `zlib.compress(npy bytes)` at zlib's default level, like Python's `zlib.compress`.
    pub fn to_zlib_npy(&self) -> Vec<u8> {
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(&self.to_npy());
        enc.finish().unwrap_or_default()
    }

    /// Parses `.npy` bytes.
    pub fn from_npy(npy: &[u8]) -> Result<Mask, MaskError> {
        let err = |m: &str| MaskError::Npy(m.to_owned());
        if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
            return Err(err("missing \\x93NUMPY magic"));
        }
        let (hlen, start) = match npy[6] {
            1 => (u16::from_le_bytes([npy[8], npy[9]]) as usize, 10),
            2 | 3 if npy.len() >= 12 => (
                u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize,
                12,
            ),
            v => return Err(MaskError::Npy(format!("unsupported npy version {v}"))),
        };
        let header = npy
            .get(start..start + hlen)
            .ok_or_else(|| err("truncated header"))?;
        let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
        let descr = dict_value(header, "descr").ok_or_else(|| err("no descr in header"))?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"');
        let dtype = Dtype::from_descr(descr)
            .ok_or_else(|| MaskError::Npy(format!("unsupported dtype {descr}")))?;
        let fortran = dict_value(header, "fortran_order").ok_or_else(|| err("no fortran_order"))?;
        if fortran.trim() != "False" {
            return Err(err("Fortran-order arrays are not supported"));
        }
        let shape_src = dict_value(header, "shape").ok_or_else(|| err("no shape in header"))?;
        let shape = shape_src
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| MaskError::Npy(format!("bad shape {shape_src}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let n = shape
            .iter()
            .try_fold(dtype.size(), |acc, d| acc.checked_mul(*d))
            .ok_or_else(|| err("shape overflows"))?;
        let data = &npy[start + hlen..];
        if data.len() != n {
            return Err(MaskError::Npy(format!(
                "shape {shape:?} of {descr} needs {n} bytes, found {}",
                data.len()
            )));
        }
        Ok(Mask {
            shape,
            dtype,
            data: data.to_vec(),
        })
    }

    /// `.npy` v1.0 bytes (header padded to a multiple of 64 with spaces and a newline).
    pub fn to_npy(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [one] => format!("({one},)"),
            dims => format!(
                "({})",
                dims.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.dtype.descr()
        );
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    /// Element at `(row, col)` of a 2-D mask as u64 (bool → 0/1); None when out of range or
    /// the dtype is a float.
    pub fn get(&self, row: usize, col: usize) -> Option<u64> {
        let [_, w] = self.shape.as_slice() else {
            return None;
        };
        let i = row.checked_mul(*w)?.checked_add(col)?;
        let s = self.dtype.size();
        let b = self.data.get(i * s..(i + 1) * s)?;
        match self.dtype {
            Dtype::Bool | Dtype::U8 => Some(u64::from(b[0])),
            Dtype::U16 => Some(u64::from(u16::from_le_bytes([b[0], b[1]]))),
            Dtype::I32 => Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64),
            Dtype::I64 => Some(i64::from_le_bytes(b.try_into().ok()?) as u64),
            Dtype::F32 | Dtype::F64 => None,
        }
    }
}

/// The text after `'key':` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let k1 = format!("'{key}':");
    let k2 = format!("\"{key}\":");
    let at = header
        .find(&k1)
        .map(|i| i + k1.len())
        .or_else(|| header.find(&k2).map(|i| i + k2.len()))?;
    let rest = header[at..].trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // From the image-all-label-types fixture: a Detection mask and a Segmentation mask.
    const DET_MASK: &str = "eJyb7BfqGxDJyFDGUK2eklqcXKRupaBek2SorqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RqGBjoKhkaaOgq1CmQCLgbcgBEMKGdjBQCCKxvo";
    const SEG_MASK: &str = "eJyb7BfqGxDJyFDGUK2eklqcXKRupaBeU2qorqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RomFjoKZiaaOgq1CmQCLoZRMAoGBWDEAkb1j+qnl/5RMAoGCDDBwaj+Uf301z8KRiwAAJj0HXk=";

    fn ejson(b64: &str) -> Value {
        json!({"$binary": {"base64": b64, "subType": "00"}})
    }

    #[test]
    fn decodes_fixture_instance_mask() {
        let m = Mask::from_ejson(&ejson(DET_MASK)).unwrap();
        assert_eq!(m.dtype, Dtype::Bool);
        assert_eq!(m.shape.len(), 2);
        assert_eq!(m.data.len(), m.len());
        assert!(m.data.iter().all(|b| *b <= 1));
        let again = Mask::from_ejson(&m.to_ejson()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn decodes_fixture_segmentation_mask() {
        let m = Mask::from_ejson(&ejson(SEG_MASK)).unwrap();
        assert_eq!(m.dtype, Dtype::U8);
        assert_eq!(m.shape, vec![48, 64], "the fixture images are 64x48");
        assert!(m.data.contains(&1) && m.data.contains(&2));
        let again = Mask::from_ejson(&m.to_ejson()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn npy_header_is_numpy_compatible() {
        let m = Mask::zeros(vec![3, 5], Dtype::Bool);
        let npy = m.to_npy();
        assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(
            std::str::from_utf8(&npy[10..10 + hlen])
                .unwrap()
                .starts_with("{'descr': '|b1', 'fortran_order': False, 'shape': (3, 5), }")
        );
        assert_eq!(Mask::from_npy(&npy).unwrap(), m);
        let one_d = Mask::zeros(vec![4], Dtype::U8);
        assert_eq!(Mask::from_npy(&one_d.to_npy()).unwrap(), one_d);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Mask::from_zlib_npy(b"nope"),
            Err(MaskError::Zlib(_))
        ));
        assert!(matches!(
            Mask::from_npy(b"\x93NUMPY\x01\x00\x05\x00{'de"),
            Err(MaskError::Npy(_))
        ));
        let mut npy = Mask::zeros(vec![2, 2], Dtype::U8).to_npy();
        npy.pop();
        assert!(
            matches!(Mask::from_npy(&npy), Err(MaskError::Npy(m)) if m.contains("needs 4 bytes"))
        );
    }
}
