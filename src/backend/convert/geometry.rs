//! FiftyOne geometry (relative `[0, 1]` coordinates, top-left origin) to and from what
//! backends store: pixels (CVAT, Darwin) and percent of the image (Label Studio).
//!
//! Pixels come back as the shortest decimal that maps to the same pixel value ([`relative`]),
//! so a label nobody moved is read back bit for bit. Keypoints may hold missing points (NaN,
//! FiftyOne's `{"$numberDouble": "NaN"}` or null): they are kept in place by [`point_list`]
//! and [`points_json`], left out of pixel lists by [`to_pixels`], and put back around
//! edited points by [`refill_missing`].

use super::ImageSize;
use crate::dataset::ejson::{ObjectId, as_f64, from_f64};
use crate::schema::ResolvedField;
use serde_json::{Value, json};

/// A point `[x, y]`.
pub type Point = [f64; 2];

/// A label's `_id` as a hex string.
pub fn label_id(label: &Value) -> Option<String> {
    ObjectId::from_ejson(label.get("_id")?).map(|i| i.to_string())
}

/// A label's class (`label`), empty when it has none.
pub fn class_of(label: &Value) -> String {
    label
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A boolean key of a label (false when absent).
pub fn flag(label: &Value, key: &str) -> bool {
    label.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A finite number (plain or EJSON).
pub fn finite(v: Option<&Value>) -> Option<f64> {
    v.and_then(as_f64).filter(|x| x.is_finite())
}

/// `N` finite numbers of a JSON array of exactly `N`.
pub fn numbers<const N: usize>(v: Option<&Value>) -> Option<[f64; N]> {
    let a = v?.as_array()?;
    if a.len() != N {
        return None;
    }
    let mut out = [0.0; N];
    for (o, x) in out.iter_mut().zip(a) {
        *o = finite(Some(x))?;
    }
    Some(out)
}

/// A label's `bounding_box` (`[x, y, w, h]`, relative), when it is four finite numbers.
pub fn bounding_box(label: &Value) -> Option<[f64; 4]> {
    numbers(label.get("bounding_box"))
}

/// The `[[x, y], ...]` points of a JSON list; a missing coordinate (NaN, null) is NaN.
pub fn point_list(v: &Value) -> Option<Vec<Point>> {
    v.as_array()?
        .iter()
        .map(|p| {
            let a = p.as_array()?;
            let c = |i: usize| {
                a.get(i)
                    .map_or(Some(f64::NAN), |x| as_f64(x).or(Some(f64::NAN)))
            };
            (a.len() == 2).then_some([c(0)?, c(1)?])
        })
        .collect()
}

/// Whether a point is there (a keypoint's missing points are NaN).
pub fn is_present(p: Point) -> bool {
    p[0].is_finite() && p[1].is_finite()
}

/// Points as FiftyOne JSON, missing ones as `{"$numberDouble": "NaN"}`.
pub fn points_json(pts: &[Point]) -> Value {
    Value::Array(
        pts.iter()
            .map(|p| json!([from_f64(p[0]), from_f64(p[1])]))
            .collect(),
    )
}

/// A relative point in percent of the image.
pub fn to_percent(p: Point) -> Point {
    [p[0] * 100.0, p[1] * 100.0]
}

/// A point in percent of the image as a relative one.
pub fn from_percent(p: Point) -> Point {
    [p[0] / 100.0, p[1] / 100.0]
}

/// A relative `[x, y, w, h]` box in percent of the image.
pub fn box_to_percent(b: [f64; 4]) -> [f64; 4] {
    b.map(|v| v * 100.0)
}

/// A `[x, y, w, h]` box in percent of the image as a relative one.
pub fn box_from_percent(b: [f64; 4]) -> [f64; 4] {
    b.map(|v| v / 100.0)
}

/// Flat pixel coordinates `[x0, y0, x1, y1, ...]` of the points that are there (unrounded:
/// backends store the floats they are given).
pub fn to_pixels(pts: &[Point], size: ImageSize) -> Vec<f64> {
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    pts.iter()
        .filter(|p| is_present(**p))
        .flat_map(|p| [p[0] * sw, p[1] * sh])
        .collect()
}

/// A relative box's pixel corners `[left, top, right, bottom]`, the far corner computed as
/// `(x + w) * width` (what [`box_from_corners`] undoes exactly).
pub fn box_corners(b: [f64; 4], size: ImageSize) -> [f64; 4] {
    let [x, y, w, h] = b;
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    [x * sw, y * sh, (x + w) * sw, (y + h) * sh]
}

/// The relative `[x, y, w, h]` box of pixel corners (in any order).
pub fn box_from_corners(corners: [f64; 4], size: ImageSize) -> [f64; 4] {
    let [a, b, c, d] = corners;
    let [x1, y1] = relative(a.min(c), b.min(d), size);
    let (sw, sh) = (f64::from(size.width), f64::from(size.height));
    let (px2, py2) = (a.max(c), b.max(d));
    let w = snap(px2 / sw - x1, |w| (x1 + w) * sw == px2);
    let h = snap(py2 / sh - y1, |h| (y1 + h) * sh == py2);
    [x1, y1, w, h]
}

/// A non-negative pixel coordinate rounded to the nearest pixel.
pub fn pixel(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Pixels to relative coordinates, each the shortest decimal that converts back to the same
/// pixel value (see [`snap`]).
pub fn relative(x: f64, y: f64, size: ImageSize) -> Point {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    [snap(x / w, |r| r * w == x), snap(y / h, |r| r * h == y)]
}

/// Flat pixel coordinates as relative points.
pub fn relative_points(flat: &[f64], size: ImageSize) -> Vec<Point> {
    flat.chunks_exact(2)
        .map(|c| relative(c[0], c[1], size))
        .collect()
}

/// The shortest decimal near `r` that `fits`, else `r` itself.
///
/// Upload multiplies relative coordinates by the image size, which is not exact in binary
/// floating point: `0.1 + 0.3` goes up as `25.6` px and `25.6 / 64 - 0.1` comes back as
/// `0.30000000000000004`. The value a dataset holds is almost always the shortest decimal
/// that maps to the pixels the backend stored, so choosing that one makes an untouched label
/// come back bit for bit, and a moved one as short a number as its pixels allow.
fn snap(r: f64, fits: impl Fn(f64) -> bool) -> f64 {
    if !r.is_finite() {
        return r;
    }
    for digits in 1..=17 {
        if let Ok(c) = format!("{:.*e}", digits - 1, r).parse::<f64>()
            && fits(c)
        {
            return c;
        }
    }
    r
}

/// The points that are there put back in the places `template` has them, missing points
/// where it has them; `None` when their number differs (points were added or removed, so
/// the places are unknown).
pub fn refill_missing(template: &[Point], present: Vec<Point>) -> Option<Vec<Point>> {
    if template.iter().filter(|p| is_present(**p)).count() != present.len() {
        return None;
    }
    let mut it = present.into_iter();
    Some(
        template
            .iter()
            .map(|p| match is_present(*p) {
                true => it.next().unwrap_or([f64::NAN, f64::NAN]),
                false => [f64::NAN, f64::NAN],
            })
            .collect(),
    )
}

/// The class of a segmentation value (`mask_targets`, else the number itself).
pub fn target_class(field: &ResolvedField, v: u64) -> String {
    let key = v.to_string();
    field
        .mask_targets
        .as_ref()
        .and_then(|t| t.get(&key).cloned())
        .unwrap_or(key)
}

/// The segmentation value of a class (inverse of [`target_class`]): 1 to 255, as masks
/// rebuilt from a backend are `uint8` and 0 is the background.
pub fn target_value(field: &ResolvedField, class: &str) -> Option<u8> {
    let from_targets = field
        .mask_targets
        .as_ref()
        .and_then(|t| t.iter().find(|(_, c)| *c == class))
        .map(|(k, _)| k.as_str());
    from_targets
        .unwrap_or(class)
        .parse()
        .ok()
        .filter(|&v: &u8| v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: ImageSize = ImageSize {
        width: 64,
        height: 48,
    };

    #[test]
    fn boxes_come_back_from_pixels_exactly() {
        for b in [
            [0.1, 0.3, 0.3, 0.2],
            [0.0, 0.0, 1.0, 1.0],
            [1.0 / 3.0, 0.7, 0.05, 0.01],
        ] {
            assert_eq!(box_from_corners(box_corners(b, SIZE), SIZE), b);
        }
        // Corners in either order.
        assert_eq!(
            box_from_corners([32.0, 24.0, 0.0, 0.0], SIZE),
            [0.0, 0.0, 0.5, 0.5]
        );
    }

    #[test]
    fn percent_round_trips_within_float_error() {
        let b = [0.1, 0.2, 0.3, 0.4];
        let back = box_from_percent(box_to_percent(b));
        assert!(b.iter().zip(back).all(|(a, b)| (a - b).abs() < 1e-12));
        assert_eq!(to_percent([0.5, 0.25]), [50.0, 25.0]);
        assert_eq!(from_percent([50.0, 25.0]), [0.5, 0.25]);
    }

    #[test]
    fn missing_keypoints_keep_their_places() {
        let v = json!([[0.1, 0.2], [{"$numberDouble": "NaN"}, null], [0.5, 0.5]]);
        let pts = point_list(&v).unwrap();
        assert!(!is_present(pts[1]));
        assert_eq!(to_pixels(&pts, SIZE).len(), 4);
        assert_eq!(
            points_json(&pts)[1],
            json!([{"$numberDouble": "NaN"}, {"$numberDouble": "NaN"}])
        );
        let moved = relative_points(&to_pixels(&[[0.1, 0.2], [0.25, 0.25]], SIZE), SIZE);
        let back = refill_missing(&pts, moved).unwrap();
        assert_eq!(back[0], [0.1, 0.2]);
        assert!(!is_present(back[1]));
        assert_eq!(back[2], [0.25, 0.25]);
        // A point added: the places are unknown.
        assert_eq!(refill_missing(&pts, vec![[0.0, 0.0]; 3]), None);
        assert_eq!(point_list(&json!([[0.1, 0.2, 0.3]])), None);
    }

    #[test]
    fn mask_targets_map_both_ways() {
        let mut f = ResolvedField::new(crate::manifest::LabelType::Segmentation, Vec::new());
        f.mask_targets = Some(
            [("1".to_string(), "road".to_string())]
                .into_iter()
                .collect(),
        );
        assert_eq!(target_class(&f, 1), "road");
        assert_eq!(target_class(&f, 7), "7");
        assert_eq!(target_value(&f, "road"), Some(1));
        assert_eq!(target_value(&f, "7"), Some(7));
        assert_eq!(target_value(&f, "0"), None);
        assert_eq!(target_value(&f, "256"), None);
        assert_eq!(target_value(&f, "sky"), None);
    }
}
