//! A video sample's frame fields, merged frame by frame.
//!
//! Each frame is merged as a sample field is (the same [`super::super::merge_field`], with
//! every restriction), against the labels uploaded on that frame (the record's
//! `uploaded_frames`, as the last merge left them) and the frame's document in the dataset.
//! Deletion needs evidence per frame: only the frames the download hands (see
//! [`SampleAnnotations`]) are merged, so a frame the backend did not hand keeps its labels,
//! and memory and time follow the handed frames, not the video's length.

use super::{At, MergeError, RunMerger};
use crate::backend::{DownloadedLabel, SampleAnnotations};
use crate::dataset::FrameNumber;
use crate::dataset::labels::Object;
use serde_json::Value;
use sha2::Sha256;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

impl RunMerger<'_> {
    /// Merge the run's frame fields of one video sample over the frames the download hands:
    /// those holding an uploaded or a downloaded label (and, with a destination field, every
    /// frame holding the source field, whose labels are copied there).
    pub(super) fn frames(
        &mut self,
        at: &At<'_>,
        mut downloaded: SampleAnnotations,
        held: &mut Sha256,
    ) -> Result<(), MergeError> {
        let (ds, r) = (self.ds, self.r);
        for (i, field) in r.schema.fields.keys().enumerate() {
            if !field.is_frame() {
                continue;
            }
            let labels = downloaded.shift_remove(field.as_str()).unwrap_or_default();
            let mut by_frame: BTreeMap<FrameNumber, Vec<DownloadedLabel>> = BTreeMap::new();
            for l in labels {
                let Some(f) = l.frame else {
                    return Err(MergeError::NoFrame {
                        sample: at.sid.to_string(),
                        field: field.to_string(),
                        backend_id: l.backend_id,
                    });
                };
                let index = l.label.get("index").and_then(Value::as_i64);
                let class = l.label.get("label").and_then(Value::as_str);
                let track = downloaded.tracks_on(field.as_str(), f);
                if let (Some(i), Some(handed)) = (index, track)
                    && !handed.covers(i, class)
                {
                    return Err(MergeError::UnhandedTrack {
                        sample: at.sid.to_string(),
                        frame: f,
                        field: field.to_string(),
                        index: i,
                        backend_id: l.backend_id,
                    });
                }
                if !downloaded.hands(f) {
                    return Err(MergeError::UnhandedFrame {
                        sample: at.sid.to_string(),
                        frame: f,
                        field: field.to_string(),
                        backend_id: l.backend_id,
                    });
                }
                by_frame.entry(f).or_default().push(l);
            }
            // A field deleted from the dataset since upload gets the run's labels back (as
            // for sample fields).
            let uploaded = r
                .uploaded_frames
                .get(field)
                .and_then(|u| u.get(at.sid))
                .filter(|_| ds.field_exists(field));
            let dest = self.dests[i].clone();
            let mut frames: BTreeSet<FrameNumber> = by_frame.keys().copied().collect();
            frames.extend(uploaded.into_iter().flat_map(|u| u.keys().copied()));
            if dest != *field {
                frames.extend(ds.frames(at.id).into_iter().filter_map(|d| {
                    let holds = d.get(field.name()).is_some_and(|v| !v.is_null());
                    d.frame_number().filter(|_| holds)
                }));
            }
            let keys = [field.name(), dest.name()];
            for f in frames.into_iter().filter(|f| downloaded.hands(*f)) {
                let doc: Cow<'_, Object> = ds
                    .frame(at.id, f)
                    .map_or_else(Default::default, |d| d.project(&keys));
                let up = uploaded
                    .and_then(|u| u.get(&f))
                    .map_or(&[][..], Vec::as_slice);
                let dl = by_frame.get(&f).map_or(&[][..], Vec::as_slice);
                let tracks = downloaded.tracks_on(field.as_str(), f);
                let here = At {
                    frame: Some(f),
                    tracks: tracks.as_ref(),
                    ..*at
                };
                self.field(&here, i, &doc, up, dl, held)?;
            }
        }
        Ok(())
    }
}
