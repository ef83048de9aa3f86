//! Which frames of a video its task holds, as FiftyOne's `frame_start`, `frame_stop` and
//! `frame_step` say: each an int for every video, a list used round-robin over the videos in
//! upload order, or a mapping by filepath (a video it does not name gets the default).
//!
//! CVAT numbers a video's frames from 0 and a task's frames from 0 too: task frame `i` is
//! video frame `start + i * step`, FiftyOne frame number `start + i * step + 1`.

use crate::backend::capabilities::{CvatConfig, PerVideo};

/// The frames of one video a task holds: every `step`th from `start` to `stop` (video frame
/// indices from 0, inclusive; `None` = the last frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRange {
    pub start: u64,
    pub stop: Option<u64>,
    pub step: u64,
}

impl Default for FrameRange {
    fn default() -> Self {
        FrameRange {
            start: 0,
            stop: None,
            step: 1,
        }
    }
}

/// A `frame_step` below 1 (FiftyOne: "'frame_step' must be >= 1").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frame_step must be >= 1; found {0}")]
pub struct BadStep(pub u64);

/// The value of a per-video setting for the video at `position` (upload order) with
/// `filepath`.
fn pick(v: Option<&PerVideo>, position: usize, filepath: &str) -> Option<u64> {
    match v? {
        PerVideo::All(n) => Some(*n),
        PerVideo::InOrder(list) if list.is_empty() => None,
        PerVideo::InOrder(list) => Some(list[position % list.len()]),
        PerVideo::ByFilepath(map) => map.get(filepath).copied(),
    }
}

impl FrameRange {
    /// The range of the video at `position` (upload order) with `filepath`.
    pub fn of(cfg: &CvatConfig, position: usize, filepath: &str) -> Result<FrameRange, BadStep> {
        let step = pick(cfg.frame_step.as_ref(), position, filepath).unwrap_or(1);
        if step == 0 {
            return Err(BadStep(step));
        }
        Ok(FrameRange {
            start: pick(cfg.frame_start.as_ref(), position, filepath).unwrap_or(0),
            stop: pick(cfg.frame_stop.as_ref(), position, filepath),
            step,
        })
    }

    /// Whether the task holds every frame.
    pub fn is_whole(&self) -> bool {
        self.start == 0 && self.stop.is_none() && self.step == 1
    }

    /// How many frames of a video of `frame_count` frames the task holds.
    pub fn task_size(&self, frame_count: u64) -> u64 {
        let Some(last) = frame_count.checked_sub(1) else {
            return 0;
        };
        let stop = self.stop.unwrap_or(last).min(last);
        if self.start > stop {
            return 0;
        }
        (stop - self.start) / self.step + 1
    }

    /// The FiftyOne frame number (from 1) of task frame `frame`.
    pub fn frame_number(&self, frame: u64) -> u64 {
        self.start + frame * self.step + 1
    }

    /// The task frame of FiftyOne frame number `number`, when the task holds it.
    pub fn task_frame(&self, number: u64, frame_count: u64) -> Option<u64> {
        let index = number.checked_sub(1)?.checked_sub(self.start)?;
        let frame = index / self.step;
        (index % self.step == 0 && frame < self.task_size(frame_count)).then_some(frame)
    }

    /// The data-upload fields CVAT takes for this range (none for a whole video).
    pub fn upload_fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.start != 0 {
            out.push(("start_frame", self.start.to_string()));
        }
        if let Some(stop) = self.stop {
            out.push(("stop_frame", stop.to_string()));
        }
        if self.step != 1 {
            out.push(("frame_filter", format!("step={}", self.step)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    #[test]
    fn an_int_a_round_robin_list_or_a_mapping_by_filepath() {
        let cfg = CvatConfig {
            frame_start: Some(PerVideo::ByFilepath(IndexMap::from([(
                "/a.mp4".into(),
                10,
            )]))),
            frame_stop: Some(PerVideo::All(100)),
            frame_step: Some(PerVideo::InOrder(vec![1, 10])),
            ..CvatConfig::default()
        };
        let a = FrameRange::of(&cfg, 0, "/a.mp4").unwrap();
        assert_eq!(
            a,
            FrameRange {
                start: 10,
                stop: Some(100),
                step: 1
            }
        );
        let b = FrameRange::of(&cfg, 1, "/b.mp4").unwrap();
        assert_eq!((b.start, b.step), (0, 10));
        assert_eq!(FrameRange::of(&cfg, 2, "/c.mp4").unwrap().step, 1);
    }

    #[test]
    fn a_zero_step_is_refused() {
        let cfg = CvatConfig {
            frame_step: Some(PerVideo::All(0)),
            ..CvatConfig::default()
        };
        assert_eq!(FrameRange::of(&cfg, 0, "/a.mp4"), Err(BadStep(0)));
    }

    #[test]
    fn every_fifth_frame_of_sixty() {
        let r = FrameRange {
            step: 5,
            ..FrameRange::default()
        };
        assert_eq!(r.task_size(60), 12);
        assert_eq!(r.frame_number(0), 1);
        assert_eq!(r.frame_number(11), 56);
        assert_eq!(r.task_frame(56, 60), Some(11));
        assert_eq!(r.task_frame(57, 60), None);
        assert_eq!(r.task_frame(0, 60), None);
        assert_eq!(
            r.upload_fields(),
            vec![("frame_filter", "step=5".to_string())]
        );
    }

    #[test]
    fn a_stop_past_the_end_is_the_last_frame() {
        let r = FrameRange {
            start: 2,
            stop: Some(99),
            step: 3,
        };
        assert_eq!(r.task_size(10), 3, "frames 2, 5, 8");
        assert_eq!(r.task_frame(9, 10), Some(2));
        assert!(FrameRange::default().is_whole());
        assert_eq!(FrameRange::default().task_size(0), 0);
    }
}
