//! Video tasks on the wire (one video per task, see `super::video`): the video's frame labels
//! go up as tracks and shapes, and the tracks the server made of them are kept in the run's
//! record (the task's notes); a download hands the frames a change can reach, each with
//! every label the task holds on it.

use super::*;
use crate::backend::cvat::video::task::{self, TrackRecord, Video, VideoNotes, VideoUpload};
use crate::dataset::FrameNumber;

/// The sample of a task of one video.
pub(super) fn video_sample(spec: &TaskSpec) -> Option<&TaskSample> {
    match spec.samples.as_slice() {
        [s] if is_video(&s.media) => Some(s),
        _ => None,
    }
}

/// The name of a task's frame when it is a video (data/meta lists one frame for a video).
fn video_frame(meta: &pages::DataMeta) -> Option<&pages::FrameMeta> {
    match meta.frames.as_slice() {
        [f] if is_video(&f.name) => Some(f),
        _ => None,
    }
}

/// A video's task as its upload makes it, and its labels as the task's annotations.
fn prepared(
    info: &ProjectInfo,
    spec: &TaskSpec,
    sample: &TaskSample,
) -> Result<(Video, VideoUpload), String> {
    let range = video_range(spec, &info.meta.settings)?.unwrap_or_default();
    let v = sample.video.as_ref().ok_or_else(|| {
        format!(
            "sample {} ({}): its frame count and size are unknown",
            sample.sample_id, sample.media
        )
    })?;
    let video = Video {
        frame_count: u64::from(v.frames),
        size: ImageSize {
            width: v.width,
            height: v.height,
        },
        range,
    };
    let fields: IndexMap<String, Vec<(u64, &Value)>> = sample
        .frame_labels
        .iter()
        .map(|(k, ls)| {
            let ls = ls.iter().map(|l| (u64::from(l.frame.get()), &l.label));
            (k.clone(), ls.collect())
        })
        .collect();
    let up = task::upload(&info.meta.schema, &fields, &video, &info.map)
        .map_err(|e| format!("sample {}: {e}", sample.sample_id))?;
    Ok((video, up))
}

/// Whether a task's annotations hold anything.
fn holds_any(ann: &CvatAnnotations) -> bool {
    !(ann.tracks.is_empty() && ann.shapes.is_empty() && ann.tags.is_empty())
}

impl CvatBackend {
    /// A task's annotations as the server holds them now.
    async fn annotations_now(&self, tid: &str) -> Result<CvatAnnotations, BackendError> {
        let raw = self
            .get(&format!("/api/tasks/{tid}/annotations"), &[])
            .await
            .map_err(|e| self.http_error(e))?;
        serde_json::from_value(raw)
            .map_err(|e| self.error(format!("task {tid}: unexpected annotations: {e}")))
    }

    /// Upload a video's frame labels to its task (`action=create`), unless the task holds
    /// annotations already (an upload that got through before an interrupted apply saved
    /// its record: nothing is sent twice); returns the tracks the server made of them.
    pub(super) async fn upload_video_labels(
        &self,
        tid: &str,
        info: &ProjectInfo,
        spec: &TaskSpec,
        sample: &TaskSample,
    ) -> Result<Vec<TrackRecord>, BackendError> {
        let current = self.annotations_now(tid).await?;
        if holds_any(&current) {
            return Ok(task::track_records(&current, &info.map));
        }
        let (_, up) = prepared(info, spec, sample).map_err(|e| self.error(e))?;
        if !holds_any(&up.annotations) {
            return Ok(Vec::new());
        }
        let body = serde_json::to_value(&up.annotations).map_err(|e| self.error(e.to_string()))?;
        let echo = self
            .call(
                Method::PATCH,
                &format!("/api/tasks/{tid}/annotations"),
                &[("action", "create".into())],
                Some(&body),
            )
            .await
            .map_err(|e| self.http_error(e))?;
        let echo: CvatAnnotations = serde_json::from_value(echo)
            .map_err(|e| self.error(format!("task {tid}: unexpected answer to the upload: {e}")))?;
        let records = task::track_records(&echo, &info.map);
        if records.len() != up.annotations.tracks.len() {
            return Err(self.error(format!(
                "task {tid}: the server answered the upload of {} track(s) with {} it could \
                 identify; the next apply reads them from the task",
                up.annotations.tracks.len(),
                records.len()
            )));
        }
        Ok(records)
    }

    /// The notes a video task's record keeps: the tracks recorded at upload (read from the
    /// task when its upload was in another process) and what went up on each frame.
    pub(super) fn video_notes(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        spec: &TaskSpec,
        sample: &TaskSample,
    ) -> Result<Value, BackendError> {
        let info = self.with_labels(&project.id)?;
        let (_, up) = prepared(&info, spec, sample).map_err(|e| self.error(e))?;
        let tracks = match self.uploads.remove(&task.id) {
            Some(t) => t,
            None => {
                let current = self.rt.block_on(self.annotations_now(&task.id))?;
                task::track_records(&current, &info.map)
            }
        };
        let notes = VideoNotes {
            tracks,
            uploaded: up.uploaded,
        };
        let value = serde_json::to_value(&notes).map_err(|e| self.error(e.to_string()))?;
        self.videos.insert(task.id.clone(), Ok(notes));
        Ok(value)
    }

    /// A video task's annotations, `None` when the task is not a video: its sample with the
    /// labels of the frames a change since the upload can reach, each frame with every label
    /// the task holds on it.
    pub(super) async fn video_annotations(
        &self,
        info: &ProjectInfo,
        tid: &str,
        meta: &pages::DataMeta,
    ) -> Result<Option<Annotations>, BackendError> {
        let Some(frame) = video_frame(meta) else {
            return Ok(None);
        };
        let recorded = info.meta.frames.get(tid).and_then(|f| f.first());
        let Some(sid) = sample_of_frame(&frame.name).or(recorded.map(String::as_str)) else {
            return Err(self.error(format!(
                "task {tid}: its video `{}` shows no sample of the run; nothing was merged",
                frame.name
            )));
        };
        let video = self.task_video(tid, meta, frame)?;
        let empty = VideoNotes::default();
        let notes = match self.videos.get(tid) {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(self.error(format!("task {tid}: {e}"))),
            None => &empty,
        };
        let ann = self.annotations_now(tid).await?;
        let got = task::download(
            &info.meta.schema,
            ann,
            &video,
            &info.map,
            &notes.tracks,
            &notes.uploaded,
        );
        let mut fields: IndexMap<String, Vec<DownloadedLabel>> = info
            .meta
            .schema
            .fields
            .keys()
            .filter(|k| k.is_frame())
            .map(|k| (k.to_string(), Vec::new()))
            .collect();
        for (n, labels) in got.frames {
            let Some(number) = FrameNumber::new(n) else {
                continue;
            };
            for (k, ls) in labels.labels {
                let ls = ls.into_iter().map(|l| l.on_frame(number));
                fields.entry(k).or_default().extend(ls);
            }
        }
        // Only the handed frames are evidence: a label missing from another frame is unknown.
        let spans = got
            .handed
            .iter()
            .filter_map(|r| {
                Some(FrameSpan::new(
                    FrameNumber::new(r.start)?,
                    FrameNumber::new(r.end - 1)?,
                ))
            })
            .collect();
        let sample = SampleAnnotations::frames(fields, spans);
        Ok(Some(IndexMap::from([(sid.to_string(), sample)])))
    }

    /// The frames a video task holds, as its data/meta tells them.
    fn task_video(
        &self,
        tid: &str,
        meta: &pages::DataMeta,
        frame: &pages::FrameMeta,
    ) -> Result<Video, BackendError> {
        let step = match meta.frame_filter.as_deref().unwrap_or("") {
            "" => 1,
            f => f
                .strip_prefix("step=")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    self.error(format!(
                        "task {tid}: data/meta has frame_filter `{f}`, not step=N"
                    ))
                })?,
        };
        let video = Video {
            frame_count: meta.stop_frame + 1,
            size: ImageSize {
                width: frame.width,
                height: frame.height,
            },
            range: FrameRange {
                start: meta.start_frame,
                stop: Some(meta.stop_frame),
                step,
            },
        };
        let held = video.range.task_size(video.frame_count);
        if meta.size.is_some_and(|s| s != held) {
            return Err(self.error(format!(
                "task {tid}: data/meta counts {} frame(s) but its range {}..={} step {step} \
                 holds {held}; nothing was merged",
                meta.size.unwrap_or_default(),
                meta.start_frame,
                meta.stop_frame
            )));
        }
        Ok(video)
    }
}
