//! CVAT's mask RLE, as CVAT 2.23.1 stores it: `points = [run_0, …, run_k, left, top, right,
//! bottom]`, box corners inclusive, runs over the box row by row, alternating 0s and 1s and
//! starting with a (possibly empty) run of 0s. The server does not check it, so we do.

use crate::backend::convert::mask::BoxMask;

/// The largest box we decode (pixels): a gigapixel.
const MAX_AREA: usize = 1 << 30;

/// A mask RLE that cannot be decoded or a mask that cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("CVAT mask: {0}")]
pub struct RleError(pub String);

/// Encodes as CVAT's `points`.
pub fn encode(mask: &BoxMask) -> Result<Vec<f64>, RleError> {
    if mask.width == 0 || mask.height == 0 || mask.bits.len() != mask.width * mask.height {
        return Err(RleError(format!(
            "a {}x{} box needs {} pixels, got {}",
            mask.width,
            mask.height,
            mask.width * mask.height,
            mask.bits.len()
        )));
    }
    let mut points = runs(&mask.bits);
    let right = u64::from(mask.left) + mask.width as u64 - 1;
    let bottom = u64::from(mask.top) + mask.height as u64 - 1;
    points.extend([
        f64::from(mask.left),
        f64::from(mask.top),
        right as f64,
        bottom as f64,
    ]);
    Ok(points)
}

/// Run lengths of `bits`, the first run counting 0s.
fn runs(bits: &[bool]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut current = false;
    let mut len = 0u64;
    for &b in bits {
        if b == current {
            len += 1;
        } else {
            out.push(len as f64);
            current = b;
            len = 1;
        }
    }
    out.push(len as f64);
    out
}

/// Decodes CVAT's `points` (integers, possibly as floats), checking that the runs cover the
/// box exactly.
pub fn decode(points: &[f64]) -> Result<BoxMask, RleError> {
    if points.len() < 5 {
        return Err(RleError(format!("{} numbers is too few", points.len())));
    }
    let ints = points
        .iter()
        .map(|&p| as_count(p))
        .collect::<Result<Vec<u64>, _>>()?;
    let (runs, corners) = ints.split_at(ints.len() - 4);
    let [left, top, right, bottom] = [corners[0], corners[1], corners[2], corners[3]];
    if right < left || bottom < top || right > u64::from(u32::MAX) || bottom > u64::from(u32::MAX) {
        return Err(RleError(format!(
            "bad box [{left}, {top}, {right}, {bottom}]"
        )));
    }
    let (width, height) = ((right - left + 1) as usize, (bottom - top + 1) as usize);
    // The box comes from the server unchecked: refuse sizes no image has before allocating.
    let area = width
        .checked_mul(height)
        .filter(|a| *a <= MAX_AREA)
        .ok_or_else(|| RleError(format!("a {width}x{height} box is too large")))?;
    let bits = expand(runs, area)?;
    Ok(BoxMask {
        left: left as u32,
        top: top as u32,
        width,
        height,
        bits,
    })
}

/// A non-negative integer from a JSON number.
fn as_count(p: f64) -> Result<u64, RleError> {
    if p.is_finite() && p >= 0.0 && p.fract() == 0.0 && p < 9.0e15 {
        Ok(p as u64)
    } else {
        Err(RleError(format!("{p} is not a pixel count")))
    }
}

/// The pixels of alternating runs, which must total `area`.
fn expand(runs: &[u64], area: usize) -> Result<Vec<bool>, RleError> {
    let total: u64 = runs.iter().sum();
    if total != area as u64 {
        return Err(RleError(format!(
            "runs total {total} pixels, the box has {area}"
        )));
    }
    let mut bits = Vec::with_capacity(area);
    for (i, &n) in runs.iter().enumerate() {
        bits.extend(std::iter::repeat_n(i % 2 == 1, n as usize));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn recorded() -> BoxMask {
        let rows = ["011000", "111100", "011110", "000111"];
        BoxMask {
            left: 10,
            top: 20,
            width: 6,
            height: 4,
            bits: rows
                .iter()
                .flat_map(|r| r.chars().map(|c| c == '1'))
                .collect(),
        }
    }

    #[test]
    fn encodes_the_recorded_example() {
        let points = encode(&recorded()).unwrap();
        assert_eq!(
            points,
            vec![1., 2., 3., 4., 3., 4., 4., 3., 10., 20., 15., 23.]
        );
    }

    #[test]
    fn decodes_the_recorded_example() {
        let back = [1., 2., 3., 4., 3., 4., 4., 3., 10., 20., 15., 23.];
        assert_eq!(decode(&back).unwrap(), recorded());
    }

    #[test]
    fn first_pixel_set_starts_with_an_empty_run() {
        let m = decode(&[0., 3., 1., 0., 0., 1., 1.]).unwrap();
        assert_eq!(m.bits, vec![true, true, true, false]);
        assert_eq!(encode(&m).unwrap(), vec![0., 3., 1., 0., 0., 1., 1.]);
    }

    #[test]
    fn rejects_runs_that_do_not_cover_the_box() {
        // The server accepted runs totalling 10 in a 24-pixel box; we do not.
        assert!(decode(&[4., 6., 10., 20., 15., 23.]).is_err());
        assert!(decode(&[1.5, 0., 0., 0., 0.]).is_err());
        assert!(decode(&[1., 5., 5., 4., 5.]).is_err());
        assert!(decode(&[1., 2.]).is_err());
        assert!(decode(&[1., 0., 0., 4e9, 4e9]).is_err());
    }

    #[test]
    fn instance_mask_round_trip() {
        let m = recorded();
        let inst = m.to_instance_mask();
        assert_eq!(inst.shape, vec![4, 6]);
        assert_eq!(BoxMask::from_instance_mask(&inst, 10, 20).unwrap(), m);
    }

    proptest! {
        #[test]
        fn rle_round_trips(w in 1usize..12, h in 1usize..12, left in 0u32..500, top in 0u32..500,
                           seed in proptest::collection::vec(any::<bool>(), 144)) {
            let m = BoxMask { left, top, width: w, height: h, bits: seed[..w * h].to_vec() };
            let points = encode(&m).unwrap();
            prop_assert_eq!(decode(&points).unwrap(), m);
        }
    }
}
