//! Video metadata (frame count, frame size, frame rate): from a sample's `metadata` when
//! FiftyOne computed it (`VideoMetadata`), else from the MP4 file's headers (sample tables,
//! never the frames themselves).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::media::MediaError;

/// What a backend needs to know of a video to create a task for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// Number of frames (FiftyOne's `total_frame_count`).
    pub frames: u32,
    /// Pixels across a frame.
    pub width: u32,
    /// Pixels down a frame.
    pub height: u32,
    /// Frames per second.
    pub frame_rate: f64,
}

/// The video metadata FiftyOne records (`total_frame_count`, `frame_width`,
/// `frame_height`, `frame_rate`), when all are present and positive.
pub fn from_metadata(metadata: Option<&Value>) -> Option<VideoInfo> {
    let m: &Map<String, Value> = metadata?.as_object()?;
    let count = |k: &str| {
        m.get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    Some(VideoInfo {
        frames: count("total_frame_count")?,
        width: count("frame_width")?,
        height: count("frame_height")?,
        frame_rate: m
            .get("frame_rate")
            .and_then(Value::as_f64)
            .filter(|r| r.is_finite() && *r > 0.0)?,
    })
}

/// The metadata of an MP4 (or MOV) file's first video track, read from its headers.
pub fn from_file(path: &Path) -> Result<VideoInfo, MediaError> {
    let err = |reason: String| MediaError {
        what: "the video metadata",
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let ctx = mp4parse::read_mp4(&mut BufReader::new(file))
        .map_err(|e| err(format!("not a readable MP4 file ({e:?})")))?;
    let track = ctx
        .tracks
        .iter()
        .find(|t| t.track_type == mp4parse::TrackType::Video)
        .ok_or_else(|| err("the file has no video track".into()))?;
    let frames: u64 = track
        .stts
        .as_ref()
        .map(|stts| stts.samples.iter().map(|s| u64::from(s.sample_count)).sum())
        .unwrap_or(0);
    let frames = u32::try_from(frames)
        .ok()
        .filter(|f| *f > 0)
        .ok_or_else(|| err(format!("the video track has {frames} frames")))?;
    // The sample description holds the coded size; the track header's (16.16 fixed point)
    // is the fallback.
    let coded = track.stsd.as_ref().and_then(|d| {
        d.descriptions.iter().find_map(|e| match e {
            mp4parse::SampleEntry::Video(v) => Some((u32::from(v.width), u32::from(v.height))),
            _ => None,
        })
    });
    let (width, height) = coded
        .or_else(|| track.tkhd.as_ref().map(|h| (h.width >> 16, h.height >> 16)))
        .filter(|(w, h)| *w > 0 && *h > 0)
        .ok_or_else(|| err("the video track has no frame size".into()))?;
    let seconds = match (track.duration, track.timescale) {
        (Some(d), Some(s)) if s.0 > 0 && d.0 > 0 => d.0 as f64 / s.0 as f64,
        _ => return Err(err("the video track has no duration".into())),
    };
    Ok(VideoInfo {
        frames,
        width,
        height,
        frame_rate: f64::from(frames) / seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture_video() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fiftyone-1.22.1/video-tracks/data/v0.mp4")
    }

    #[test]
    fn reads_fiftyones_metadata_first() {
        let m = json!({"_cls": "VideoMetadata", "frame_width": 320, "frame_height": 240,
                       "frame_rate": 29.97, "total_frame_count": 90, "duration": 3.0});
        assert_eq!(
            from_metadata(Some(&m)),
            Some(VideoInfo {
                frames: 90,
                width: 320,
                height: 240,
                frame_rate: 29.97
            })
        );
        assert_eq!(from_metadata(Some(&json!(null))), None);
        assert_eq!(from_metadata(Some(&json!({"frame_width": 3}))), None);
    }

    /// The fixture FiftyOne exported: 6 frames of 64x48 at 5 fps (its sample tables: 6
    /// samples of 2048 ticks at 10240 ticks a second); frames.json has labels on 3 of them.
    #[test]
    fn reads_an_mp4s_headers() {
        let v = from_file(&fixture_video()).unwrap();
        assert_eq!((v.frames, v.width, v.height), (6, 64, 48));
        assert!((v.frame_rate - 5.0).abs() < 1e-6, "{v:?}");
    }

    #[test]
    fn an_unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.mp4");
        std::fs::write(&p, b"not a video").unwrap();
        let e = from_file(&p).unwrap_err().to_string();
        assert!(e.contains("bad.mp4"), "{e}");
    }
}
