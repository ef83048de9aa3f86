//! Label Studio's brush RLE (the `@thi.ng/rle-pack` format its editor writes): a bit stream,
//! MSB first, of `u32 count`, 5 bits word size − 1, four 4-bit run-length sizes − 1, then
//! records `1 bit repeat?`, `2 bits size index`, `n` in that size, count = n + 1, followed by
//! one word repeated `count` times (repeat) or `count` literal words. Brush masks are RGBA
//! bytes (count = W·H·4) with 8-bit words.

/// Run-length field widths we write (what the editor writes too).
const RLE_SIZES: [u32; 4] = [3, 4, 8, 16];
/// Runs at least this long are written as repeats; shorter ones go into literal groups.
const MIN_REPEAT: usize = 3;

/// A brush RLE that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RleError {
    #[error("brush RLE ends early")]
    Truncated,
    #[error("brush RLE has {0}-bit words; only 8-bit words are supported")]
    WordSize(u32),
    #[error("brush RLE holds {got} values, expected {expected}")]
    Size { got: usize, expected: usize },
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, bits: u32) -> Result<u32, RleError> {
        let mut out = 0u32;
        for _ in 0..bits {
            let byte = *self.bytes.get(self.pos / 8).ok_or(RleError::Truncated)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            out = (out << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(out)
    }
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn write(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 1 << (7 - self.bits % 8);
            }
            self.bits += 1;
        }
    }
}

/// Decodes an RLE into its bytes (RGBA for brushes).
pub fn decode(rle: &[u8]) -> Result<Vec<u8>, RleError> {
    let mut r = BitReader { bytes: rle, pos: 0 };
    let num = r.read(32)? as usize;
    let word = r.read(5)? + 1;
    if word != 8 {
        return Err(RleError::WordSize(word));
    }
    let mut sizes = [0u32; 4];
    for s in &mut sizes {
        *s = r.read(4)? + 1;
    }
    // Capacity is capped: `num` comes from the server and could be absurd.
    let mut out = Vec::with_capacity(num.min(1 << 26));
    while out.len() < num {
        let repeat = r.read(1)? == 1;
        let size = sizes[r.read(2)? as usize];
        let count = r.read(size)? as usize + 1;
        let end = (out.len() + count).min(num);
        if repeat {
            let v = r.read(8)? as u8;
            out.resize(end, v);
        } else {
            for _ in 0..count {
                let v = r.read(8)? as u8;
                if out.len() < num {
                    out.push(v);
                }
            }
        }
    }
    Ok(out)
}

/// Encodes bytes as an RLE.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.write(data.len() as u32, 32);
    w.write(7, 5);
    for s in RLE_SIZES {
        w.write(s - 1, 4);
    }
    let max = 1usize << RLE_SIZES[3];
    let header = |w: &mut BitWriter, repeat: bool, count: usize| {
        let n = (count - 1) as u32;
        let k = RLE_SIZES.iter().position(|&s| (n >> s) == 0).unwrap_or(3);
        w.write(u32::from(repeat), 1);
        w.write(k as u32, 2);
        w.write(n, RLE_SIZES[k]);
    };
    let mut i = 0;
    let mut literal_start = 0;
    let flush_literals = |w: &mut BitWriter, from: usize, to: usize| {
        let mut s = from;
        while s < to {
            let e = (s + max).min(to);
            header(w, false, e - s);
            for &b in &data[s..e] {
                w.write(u32::from(b), 8);
            }
            s = e;
        }
    };
    while i < data.len() {
        let mut j = i + 1;
        while j < data.len() && data[j] == data[i] && j - i < max {
            j += 1;
        }
        if j - i >= MIN_REPEAT {
            flush_literals(&mut w, literal_start, i);
            header(&mut w, true, j - i);
            w.write(u32::from(data[i]), 8);
            literal_start = j;
        }
        i = j;
    }
    flush_literals(&mut w, literal_start, data.len());
    w.bytes
}

/// A binary mask (row-major, `w`×`h`) as a brush RLE: white RGB, alpha 255 where set.
pub fn encode_mask(mask: &[bool]) -> Vec<u8> {
    let rgba: Vec<u8> = mask
        .iter()
        .flat_map(|&on| if on { [255u8; 4] } else { [0u8; 4] })
        .collect();
    encode(&rgba)
}

/// A brush RLE of a `w`×`h` image as a binary mask; the editor anti-aliases strokes, so a
/// pixel counts when its alpha is at least 128.
pub fn decode_mask(rle: &[u8], w: usize, h: usize) -> Result<Vec<bool>, RleError> {
    let rgba = decode(rle)?;
    let expected = w * h * 4;
    if rgba.len() != expected {
        return Err(RleError::Size {
            got: rgba.len(),
            expected,
        });
    }
    Ok(rgba.chunks_exact(4).map(|p| p[3] >= 128).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_the_editor_header() {
        // The first bytes of a 640x480 brush made by Label Studio 1.23.2 (recipe exchanges).
        let mut r = BitReader {
            bytes: &[0, 18, 192, 0, 57, 27, 255],
            pos: 0,
        };
        assert_eq!(r.read(32), Ok(640 * 480 * 4));
        assert_eq!(r.read(5), Ok(7));
        let sizes: Vec<u32> = (0..4).map(|_| r.read(4).unwrap() + 1).collect();
        assert_eq!(sizes, RLE_SIZES);
    }

    #[test]
    fn alpha_threshold() {
        let rgba = [0, 0, 0, 127, 9, 9, 9, 128, 1, 1, 1, 255, 0, 0, 0, 0];
        assert_eq!(
            decode_mask(&encode(&rgba), 2, 2),
            Ok(vec![false, true, true, false])
        );
        assert!(matches!(
            decode_mask(&encode(&rgba), 3, 2),
            Err(RleError::Size { .. })
        ));
        assert_eq!(decode(&[0, 0, 0]), Err(RleError::Truncated));
    }

    #[test]
    fn long_runs_and_literals() {
        let mut data = vec![7u8; 200_000];
        data.extend((0..70_000).map(|i| (i % 251) as u8));
        assert_eq!(decode(&encode(&data)).unwrap(), data);
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(255u8), any::<u8>()], 0..3000)) {
            prop_assert_eq!(decode(&encode(&data)).unwrap(), data);
        }

        #[test]
        fn mask_round_trip(mask in proptest::collection::vec(any::<bool>(), 0..2000)) {
            let n = mask.len();
            prop_assert_eq!(decode_mask(&encode_mask(&mask), n, 1).unwrap(), mask);
        }
    }
}
