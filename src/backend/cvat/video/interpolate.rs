//! CVAT 2.23.1's own track interpolation (`TrackManager.get_interpolated_shapes` in
//! `cvat/apps/dataset_manager/annotation.py`), so a downloaded track gives on every frame the
//! shape the annotator saw in CVAT's UI and its exports.
//!
//! Rectangles, ellipses, cuboids and skeletons move linearly between keyframes (rotation along
//! the shorter arc); a single point moves linearly, several points stay where the left
//! keyframe had them; polygons and polylines are matched by their relative position along the
//! curve and reduced, as CVAT does. After the last visible keyframe the shape stays put up to
//! the end of the task; an `outside` keyframe ends the visible stretch. Mutable attributes
//! carry forward from the keyframe that last set them.

use super::super::convert::Shape;

/// The visible shapes of a track's keyframes (`shapes`, any order) on every frame in
/// `[first keyframe, end_frame)`, sorted by frame: keyframes with `keyframe: Some(true)`,
/// interpolated frames with `Some(false)` and no id. Outside shapes are left out.
pub fn expand(shapes: &[Shape], end_frame: u64) -> Vec<Shape> {
    let mut keys: Vec<Shape> = shapes.to_vec();
    keys.sort_by_key(|s| s.frame);
    let Some(first) = keys.first().map(|s| s.frame) else {
        return Vec::new();
    };
    let mut out: Vec<Shape> = Vec::new();
    let mut prev: Option<Shape> = None;
    for mut shape in keys {
        if let Some(p) = &prev {
            // A second shape on the same frame: CVAT keeps the first (it rejects differing
            // ones; an identical copy is skipped).
            if shape.frame == p.frame {
                continue;
            }
            for a in &p.attributes {
                if !shape.attributes.iter().any(|b| b.spec_id == a.spec_id) {
                    shape.attributes.push(a.clone());
                }
            }
            if !p.outside {
                out.extend(between(p, &shape));
            }
        }
        shape.keyframe = Some(true);
        let past_end = shape.frame >= end_frame;
        out.push(shape.clone());
        prev = Some(shape);
        if past_end {
            break;
        }
    }
    if let Some(p) = prev.filter(|p| !p.outside) {
        out.extend((p.frame + 1..end_frame).map(|f| copy(&p, f, None, None)));
    }
    out.retain(|s| s.frame >= first && s.frame < end_frame && !s.outside);
    out
}

/// A non-key copy of `source` on `frame`.
fn copy(source: &Shape, frame: u64, points: Option<Vec<f64>>, rotation: Option<f64>) -> Shape {
    let mut s = source.clone();
    s.id = None;
    s.keyframe = Some(false);
    s.frame = frame;
    if let Some(p) = points {
        s.points = p;
    }
    if let Some(r) = rotation {
        s.rotation = r;
    }
    s
}

/// The shapes strictly between two keyframes.
fn between(a: &Shape, b: &Shape) -> Vec<Shape> {
    match a.shape_type.as_str() {
        "points" if a.points.len() == 2 && b.points.len() == 2 => simple(a, b),
        "points" => (a.frame + 1..b.frame)
            .map(|f| copy(a, f, None, None))
            .collect(),
        "polygon" | "polyline" => polyshape(a, b),
        // rectangle, ellipse, cuboid, skeleton (and what CVAT would refuse: moved linearly).
        _ => simple(a, b),
    }
}

/// Python's `%` on floats (the result takes the divisor's sign).
fn py_mod(a: f64, m: f64) -> f64 {
    a - m * (a / m).floor()
}

/// CVAT's `find_angle_diff`, including its answer of 1 for a half turn.
fn angle_diff(right: f64, left: f64) -> f64 {
    let d = py_mod(right - left + 180.0, 360.0) - 180.0;
    if d.abs() >= 180.0 {
        if d > 0.0 { 360.0 + d.abs() } else { 1.0 }
    } else {
        d
    }
}

/// Linear interpolation of every coordinate (and of the rotation).
fn simple(a: &Shape, b: &Shape) -> Vec<Shape> {
    let distance = (b.frame - a.frame) as f64;
    (a.frame + 1..b.frame)
        .map(|f| {
            let t = (f - a.frame) as f64 / distance;
            let rotation = py_mod(
                a.rotation + angle_diff(b.rotation, a.rotation) * t + 360.0,
                360.0,
            );
            let points = if a.points.len() == b.points.len() {
                a.points
                    .iter()
                    .zip(&b.points)
                    .map(|(x0, x1)| x0 + (x1 - x0) * t)
                    .collect()
            } else {
                a.points.clone()
            };
            copy(a, f, Some(points), Some(rotation))
        })
        .collect()
}

/// Polygons (closed for the computation) and polylines.
fn polyshape(a: &Shape, b: &Shape) -> Vec<Shape> {
    let polygon = a.shape_type == "polygon";
    let close = |p: &[f64]| {
        let mut v = p.to_vec();
        if polygon && p.len() >= 2 {
            v.extend_from_slice(&p[..2]);
        }
        v
    };
    let (left, right) = (pairs(&close(&a.points)), pairs(&close(&b.points)));
    if left.is_empty() || right.is_empty() {
        return (a.frame + 1..b.frame)
            .map(|f| copy(a, f, None, None))
            .collect();
    }
    let distance = (b.frame - a.frame) as f64;
    (a.frame + 1..b.frame)
        .map(|f| {
            let t = (f - a.frame) as f64 / distance;
            let mut points: Vec<f64> = position(&left, &right, t).into_iter().flatten().collect();
            if polygon {
                points.truncate(points.len().saturating_sub(2));
            }
            copy(a, f, Some(points), None)
        })
        .collect()
}

fn pairs(p: &[f64]) -> Vec<[f64; 2]> {
    p.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn curve_length(p: &[[f64; 2]]) -> f64 {
    p.windows(2).map(|w| dist(w[0], w[1])).sum()
}

/// Each point's position along the curve, 0 to 1.
fn offsets(p: &[[f64; 2]]) -> Vec<f64> {
    let length = curve_length(p);
    let mut acc = 0.0;
    let mut out = vec![0.0];
    for w in p.windows(2) {
        acc += dist(w[0], w[1]);
        out.push(acc / length);
    }
    out
}

/// The index of the value of `curve` nearest `value` (the first on a tie).
fn nearest(value: f64, curve: &[f64]) -> usize {
    let mut best = (0, (value - curve[0]).abs());
    for (i, c) in curve.iter().enumerate().skip(1) {
        let d = (value - c).abs();
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// CVAT's `interpolate_position`: the points of the curve `t` of the way from `left` to
/// `right`.
fn position(left: &[[f64; 2]], right: &[[f64; 2]], t: f64) -> Vec<[f64; 2]> {
    let (lo, ro) = (offsets(left), offsets(right));
    let mut matching: Vec<Vec<usize>> = lo.iter().map(|v| vec![nearest(*v, &ro)]).collect();
    let matched: Vec<usize> = matching.iter().flatten().copied().collect();
    for r in (0..right.len()).filter(|r| !matched.contains(r)) {
        matching[nearest(ro[r], &lo)].push(r);
    }
    for m in &mut matching {
        m.sort_unstable();
    }
    let mut interpolated = Vec::new();
    for (l, m) in matching.iter().enumerate() {
        for &r in m {
            let (p, q) = (left[l], right[r]);
            interpolated.push([p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t]);
        }
    }
    reduce(&interpolated, &matching, left, right)
}

/// CVAT's `reduce_interpolation`: drops interpolated points closer together than the
/// keyframes' own spacing warrants.
fn reduce(
    points: &[[f64; 2]],
    matching: &[Vec<usize>],
    left: &[[f64; 2]],
    right: &[[f64; 2]],
) -> Vec<[f64; 2]> {
    let mut index: Vec<Vec<usize>> = Vec::with_capacity(matching.len());
    let mut acc = 0;
    for m in matching {
        index.push((acc..acc + m.len()).collect());
        acc += m.len();
    }
    let minimize = |base: f64, n: usize, start: usize, stop: usize| -> Vec<[f64; 2]> {
        let threshold = base / (2.0 * n as f64);
        let mut out = vec![points[start]];
        let mut latest = start;
        for i in start + 1..stop {
            if dist(points[latest], points[i]) >= threshold {
                out.push(points[i]);
                latest = i;
            }
        }
        out.push(points[stop]);
        if out.len() == 2 && dist(points[start], points[stop]) < threshold {
            let n = out.len() as f64;
            let (sx, sy) = out
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
            return vec![[sx / n, sy / n]];
        }
        out
    };
    let mut reduced = Vec::new();
    let left_segment = |start: usize, stop: usize, reduced: &mut Vec<[f64; 2]>| {
        let (a, b) = (index[start][0], index[stop][0]);
        if a == b {
            reduced.push(points[a]);
            return;
        }
        let base = curve_length(&left[start..=stop]);
        reduced.extend(minimize(base, stop - start + 1, a, b));
    };
    let right_segment = |l: usize, reduced: &mut Vec<[f64; 2]>| {
        let (start, stop) = (matching[l][0], *matching[l].last().expect("matched"));
        let (a, b) = (index[l][0], *index[l].last().expect("indexed"));
        let base = curve_length(&right[start..=stop]);
        reduced.extend(minimize(base, stop - start + 1, a, b));
    };
    let mut opened: Option<usize> = None;
    for i in 0..left.len() {
        if matching[i].len() == 1 {
            match opened {
                Some(o) if matching[i][0] == matching[o][0] => continue,
                Some(o) => {
                    left_segment(o, i - 1, &mut reduced);
                    opened = Some(i);
                }
                None => opened = Some(i),
            }
        } else {
            if let Some(o) = opened.take() {
                left_segment(o, i - 1, &mut reduced);
            }
            right_segment(i, &mut reduced);
        }
    }
    if let Some(o) = opened {
        left_segment(o, left.len() - 1, &mut reduced);
    }
    reduced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cvat::convert::{Annotations, AttributeValue};

    fn recorded(step: &str) -> serde_json::Value {
        let line = include_str!("../../../../tests/fixtures/cvat/exchanges-2.23.1.jsonl")
            .lines()
            .find(|l| l.contains(&format!("\"step\": \"{step}\"")))
            .expect("recorded step");
        serde_json::from_str::<serde_json::Value>(line).unwrap()["response_body"].clone()
    }

    fn key(shape_type: &str, frame: u64, points: Vec<f64>) -> Shape {
        serde_json::from_value(serde_json::json!({
            "type": shape_type, "frame": frame, "points": points
        }))
        .unwrap()
    }

    #[test]
    fn recorded_track_moves_linearly_and_ends_at_its_outside_keyframe() {
        let ann: Annotations =
            serde_json::from_value(recorded("6.video.annotations.get.after_update")).unwrap();
        let track = ann.tracks.iter().find(|t| t.id == Some(11)).unwrap();
        let shapes = expand(&track.shapes, 10);
        let frames: Vec<u64> = shapes.iter().map(|s| s.frame).collect();
        assert_eq!(frames, (0..8).collect::<Vec<_>>(), "frame 8 is outside");
        assert_eq!(shapes[2].points, vec![12.0, 10.0, 24.0, 22.0]);
        assert_eq!(shapes[2].keyframe, Some(false));
        assert_eq!(shapes[2].id, None);
        assert_eq!(shapes[4].keyframe, Some(true));
        assert_eq!(shapes[4].id, Some(27));
        // CVAT moves a box towards its closing outside keyframe too.
        assert_eq!(shapes[7].points, vec![32.0, 10.0, 44.0, 22.0]);
        assert!(shapes[7].occluded, "copied from keyframe 4");
    }

    #[test]
    fn a_track_without_an_outside_keyframe_runs_to_the_end_of_the_task() {
        let ann: Annotations =
            serde_json::from_value(recorded("6.video.annotations.get.after_update")).unwrap();
        let track = ann.tracks.iter().find(|t| t.id == Some(12)).unwrap();
        let shapes = expand(&track.shapes, 10);
        assert_eq!(
            shapes.iter().map(|s| s.frame).collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9]
        );
        assert_eq!(shapes[4].points, vec![30.0, 12.0, 42.0, 24.0]);
    }

    #[test]
    fn mutable_attributes_carry_forward_from_the_keyframe_that_set_them() {
        let mut a = key("rectangle", 0, vec![0.0, 0.0, 2.0, 2.0]);
        a.attributes = vec![AttributeValue {
            spec_id: 7,
            value: "x".into(),
        }];
        let b = key("rectangle", 2, vec![2.0, 2.0, 4.0, 4.0]);
        let shapes = expand(&[b, a], 3);
        assert!(shapes.iter().all(|s| s.attributes[0].value == "x"));
        assert_eq!(shapes[1].points, vec![1.0, 1.0, 3.0, 3.0]);
    }

    #[test]
    fn rotation_takes_the_shorter_arc() {
        let mut a = key("rectangle", 0, vec![0.0; 4]);
        a.rotation = 350.0;
        let mut b = key("rectangle", 2, vec![0.0; 4]);
        b.rotation = 10.0;
        assert_eq!(expand(&[a, b], 3)[1].rotation, 0.0);
    }

    #[test]
    fn several_points_hold_still_one_point_moves() {
        let many = expand(
            &[
                key("points", 0, vec![0.0, 0.0, 1.0, 1.0]),
                key("points", 2, vec![2.0, 2.0, 3.0, 3.0]),
            ],
            3,
        );
        assert_eq!(many[1].points, vec![0.0, 0.0, 1.0, 1.0]);
        let one = expand(
            &[
                key("points", 0, vec![0.0, 0.0]),
                key("points", 2, vec![2.0, 4.0]),
            ],
            3,
        );
        assert_eq!(one[1].points, vec![1.0, 2.0]);
    }

    #[test]
    fn a_polygon_with_the_same_points_moves_point_by_point() {
        let a = key(
            "polygon",
            0,
            vec![0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0],
        );
        let b = key(
            "polygon",
            2,
            vec![10.0, 0.0, 20.0, 0.0, 20.0, 10.0, 10.0, 10.0],
        );
        let mid = &expand(&[a, b], 3)[1];
        assert_eq!(mid.points, vec![5.0, 0.0, 15.0, 0.0, 15.0, 10.0, 5.0, 10.0]);
    }

    #[test]
    fn a_polyline_gaining_points_is_matched_along_its_length() {
        let a = key("polyline", 0, vec![0.0, 0.0, 10.0, 0.0]);
        let b = key("polyline", 2, vec![0.0, 10.0, 5.0, 10.0, 10.0, 10.0]);
        let mid = &expand(&[a, b], 3)[1];
        // CVAT: left 0→right 0, left 1→right 2, right 1 joins left 0 (a tie goes to the first).
        assert_eq!(mid.points, vec![0.0, 5.0, 2.5, 5.0, 10.0, 5.0]);
    }

    #[test]
    fn nothing_past_the_end_of_the_task() {
        let shapes = expand(
            &[
                key("rectangle", 0, vec![0.0; 4]),
                key("rectangle", 8, vec![8.0; 4]),
            ],
            4,
        );
        assert_eq!(shapes.len(), 4);
        assert_eq!(shapes[3].points, vec![3.0; 4]);
    }
}
