//! CVAT video: one video per task, frame labels as tracks.
//!
//! * `frames`: which frames of a video a task holds (`frame_start`/`frame_stop`/`frame_step`
//!   resolved per video) and the way between task frames and FiftyOne frame numbers.
//! * `tracks`: a field's frame labels ↔ CVAT tracks and per-frame shapes.
//! * `interpolate`: CVAT's own interpolation of a track between its keyframes.
//! * `uploaded`: what an upload sent on each frame, as the run's record keeps it.
//! * `window`: which frames of a downloaded track can differ from the upload.
//! * `task`: one video task both ways, on the frames that can hold a change.

pub mod frames;
pub mod interpolate;
pub mod task;
pub mod tracks;
pub mod uploaded;
pub mod window;
