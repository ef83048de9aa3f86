//! Where a field lives: on the sample, or on each frame of a video sample (written
//! `frames.<name>`, as FiftyOne writes frame fields). The `frames.` prefix is read here and
//! nowhere else; everything past the edge asks the path.

use std::borrow::Borrow;
use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What FiftyOne writes before a frame field's name.
const FRAMES_PREFIX: &str = "frames.";

/// Whether a field is a sample's or a frame's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// A field of the sample document (samples.json).
    Sample,
    /// A field of each frame document (frames.json) of a video sample.
    Frame,
}

/// A field of a run or a view: its level and its name on the document.
///
/// Kept as its written form (`ground_truth`, `frames.detections`) so that it hashes and
/// compares as that string: maps keyed by paths are looked up with the written form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    written: String,
}

impl FieldPath {
    /// A path from its written form (`frames.<name>` for a frame field).
    pub fn parse(written: &str) -> FieldPath {
        FieldPath {
            written: written.to_owned(),
        }
    }

    /// A sample field.
    pub fn sample(name: &str) -> FieldPath {
        FieldPath::parse(name)
    }

    /// A frame field.
    pub fn frame(name: &str) -> FieldPath {
        FieldPath {
            written: format!("{FRAMES_PREFIX}{name}"),
        }
    }

    /// The same name at `level`.
    pub fn at(level: Level, name: &str) -> FieldPath {
        match level {
            Level::Sample => FieldPath::sample(name),
            Level::Frame => FieldPath::frame(name),
        }
    }

    /// The level and document key of a written field name, without building a path (for
    /// passes over every sample that look at names they were handed as text).
    pub fn split(written: &str) -> (Level, &str) {
        match written.strip_prefix(FRAMES_PREFIX) {
            Some(name) => (Level::Frame, name),
            None => (Level::Sample, written),
        }
    }

    /// Sample or frame.
    pub fn level(&self) -> Level {
        FieldPath::split(&self.written).0
    }

    /// Whether it is a frame field.
    pub fn is_frame(&self) -> bool {
        self.level() == Level::Frame
    }

    /// The key on its document (without `frames.`).
    pub fn name(&self) -> &str {
        FieldPath::split(&self.written).1
    }

    /// The written form, as manifests, records and messages show it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Why the name is not one a run may annotate (FiftyOne field names are identifiers
    /// that do not start with `_`); `None` when it is fine.
    pub fn naming_problem(&self) -> Option<&'static str> {
        let name = self.name();
        if name.is_empty() {
            Some("an empty name")
        } else if name.contains('.') {
            Some("a nested path")
        } else if name.starts_with('_') {
            Some("a private name")
        } else {
            None
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.written, f)
    }
}

impl Borrow<str> for FieldPath {
    fn borrow(&self) -> &str {
        &self.written
    }
}

impl Borrow<String> for FieldPath {
    fn borrow(&self) -> &String {
        &self.written
    }
}

impl AsRef<str> for FieldPath {
    fn as_ref(&self) -> &str {
        &self.written
    }
}

impl PartialEq<str> for FieldPath {
    fn eq(&self, other: &str) -> bool {
        self.written == other
    }
}

impl PartialEq<&str> for FieldPath {
    fn eq(&self, other: &&str) -> bool {
        self.written == *other
    }
}

impl From<&str> for FieldPath {
    fn from(s: &str) -> Self {
        FieldPath::parse(s)
    }
}

impl From<&String> for FieldPath {
    fn from(s: &String) -> Self {
        FieldPath::parse(s)
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(FieldPath::parse(&s))
    }
}

/// A frame's number within its video: 1-based, as FiftyOne's `frame_number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameNumber(NonZeroU32);

impl FrameNumber {
    /// The first frame.
    pub const FIRST: FrameNumber = FrameNumber(NonZeroU32::MIN);

    /// Frame `n` (1-based); `None` for 0 or a number past `u32`.
    pub fn new(n: u64) -> Option<FrameNumber> {
        u32::try_from(n)
            .ok()
            .and_then(NonZeroU32::new)
            .map(FrameNumber)
    }

    /// The frame at 0-based position `i` (a backend's frame index).
    pub fn from_index(i: u64) -> Option<FrameNumber> {
        FrameNumber::new(i.checked_add(1)?)
    }

    /// The 1-based number.
    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// The 0-based position (a backend's frame index).
    pub fn index(self) -> u32 {
        self.0.get() - 1
    }
}

impl fmt::Display for FrameNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for FrameNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.get())
    }
}

impl<'de> Deserialize<'de> for FrameNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        FrameNumber::new(n).ok_or_else(|| {
            serde::de::Error::custom(format!("frame number {n}: frames are numbered from 1"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_makes_a_frame_field() {
        let f = FieldPath::parse("frames.dets");
        assert_eq!(
            (f.level(), f.name(), f.as_str()),
            (Level::Frame, "dets", "frames.dets")
        );
        let s = FieldPath::parse("ground_truth");
        assert_eq!((s.level(), s.name()), (Level::Sample, "ground_truth"));
        assert_eq!(FieldPath::frame("dets"), f);
        assert_eq!(FieldPath::at(Level::Sample, "ground_truth"), s);
        assert_eq!(
            FieldPath::parse("frames._x").naming_problem(),
            Some("a private name")
        );
        assert_eq!(
            FieldPath::parse("frames.").naming_problem(),
            Some("an empty name")
        );
        assert_eq!(
            FieldPath::parse("a.b").naming_problem(),
            Some("a nested path")
        );
        assert_eq!(f.naming_problem(), None);
    }

    #[test]
    fn maps_keyed_by_paths_are_looked_up_by_the_written_form() {
        let mut m = indexmap::IndexMap::new();
        m.insert(FieldPath::frame("dets"), 1);
        assert_eq!(m.get("frames.dets"), Some(&1));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"frames.dets":1}"#);
        let back: indexmap::IndexMap<FieldPath, i32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn frame_numbers_start_at_one() {
        assert_eq!(FrameNumber::new(0), None);
        assert_eq!(FrameNumber::from_index(0), Some(FrameNumber::FIRST));
        assert_eq!(FrameNumber::new(7).unwrap().index(), 6);
        assert!(serde_json::from_str::<FrameNumber>("0").is_err());
        assert_eq!(serde_json::to_string(&FrameNumber::new(3)).unwrap(), "3");
    }
}
