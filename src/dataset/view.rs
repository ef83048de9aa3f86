//! View stages: which samples (and, after `filter_labels`, which labels) a run covers.
//! Stages apply in order, as in FiftyOne: a `filter_labels` narrows what later
//! `match_labels` and `sort_by` expressions see.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::Value;

use super::dir::Dataset;
use super::ejson::ObjectId;
use super::expr::{self, Expr, ExprError, Val};
use super::labels::{self, Object};
use crate::manifest::types::{SortBy, ViewStage};

/// The result of applying view stages to a dataset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    /// The selected samples, in view order.
    pub sample_ids: Vec<ObjectId>,
    /// For each field narrowed by `filter_labels` (`frames.<name>` for frame fields): per
    /// selected sample, the ids of the labels that remain, in dataset order.
    pub filtered: IndexMap<String, HashMap<ObjectId, Vec<ObjectId>>>,
}

impl View {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sample_ids.len()
    }

    /// Whether no sample is selected.
    pub fn is_empty(&self) -> bool {
        self.sample_ids.is_empty()
    }

    /// The ids of the labels of `field` on `sample` that the view includes: the filtered ones
    /// for filtered fields, otherwise every label of the field.
    pub fn label_ids(&self, ds: &Dataset, sample: ObjectId, field: &str) -> Vec<ObjectId> {
        if let Some(per_sample) = self.filtered.get(field) {
            return per_sample.get(&sample).cloned().unwrap_or_default();
        }
        let Some(idx) = ds.samples().iter().position(|s| s.id() == sample) else {
            return Vec::new();
        };
        let ctx = Ctx::new(ds, idx, &[field]);
        ctx.raw_labels(field)
            .into_iter()
            .filter_map(|l| l.get("_id").and_then(ObjectId::from_ejson))
            .collect()
    }
}

/// A stage that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A `where`/`expr` does not parse.
    #[error("view[{stage}] ({name}): {source}\n{rendered}")]
    Expr {
        /// 0-based stage index.
        stage: usize,
        /// The stage's name.
        name: &'static str,
        /// The parse error.
        source: ExprError,
        /// The expression with a caret under the error.
        rendered: String,
    },
    /// `select` got something that is not an ObjectId.
    #[error("view[{stage}] (select): {id:?} is not a sample id (24 hex digits)")]
    InvalidId {
        /// 0-based stage index.
        stage: usize,
        /// The text.
        id: String,
    },
    /// `select` names a sample the dataset does not have.
    #[error("view[{stage}] (select): no sample with id {id}")]
    UnknownSample {
        /// 0-based stage index.
        stage: usize,
        /// The id.
        id: ObjectId,
    },
    /// A label stage names a field that does not exist or does not hold labels.
    #[error("view[{stage}] ({name}): {problem}")]
    Field {
        /// 0-based stage index.
        stage: usize,
        /// The stage's name.
        name: &'static str,
        /// `field 'x' does not exist` / `field 'x' is not a label field`.
        problem: String,
    },
}

fn stage_name(s: &ViewStage) -> &'static str {
    match s {
        ViewStage::MatchTags(_) => "match_tags",
        ViewStage::Exists(_) => "exists",
        ViewStage::FilterLabels(_) => "filter_labels",
        ViewStage::MatchLabels(_) => "match_labels",
        ViewStage::Select(_) => "select",
        ViewStage::SortBy(_) => "sort_by",
        ViewStage::Skip(_) => "skip",
        ViewStage::Limit(_) => "limit",
        ViewStage::Take(_) => "take",
    }
}

/// A sample (and, when needed, its frames) parsed for one evaluation. Passes over the whole
/// dataset parse each sample in turn instead of keeping every sample parsed.
struct Ctx<'a> {
    sample: Cow<'a, Object>,
    frames: Vec<Cow<'a, Object>>,
}

impl<'a> Ctx<'a> {
    /// Parses the fields a stage reads (`frames.<name>` for frame fields), nothing else.
    fn new<S: AsRef<str>>(ds: &'a Dataset, idx: usize, fields: &[S]) -> Self {
        let s = &ds.samples()[idx];
        let (mut sample_keys, mut frame_keys) = (Vec::new(), Vec::new());
        for f in fields {
            match f.as_ref().strip_prefix("frames.") {
                Some(name) => frame_keys.push(name),
                None => sample_keys.push(f.as_ref()),
            }
        }
        let frames = if frame_keys.is_empty() {
            Vec::new()
        } else {
            ds.frames(s.id())
                .into_iter()
                .map(|f| f.project(&frame_keys))
                .collect()
        };
        Ctx {
            sample: s.project(&sample_keys),
            frames,
        }
    }

    /// The label objects of a field; `frames.<name>` gathers them over all frames.
    fn raw_labels(&self, field: &str) -> Vec<&Object> {
        match field.strip_prefix("frames.") {
            Some(f) => self
                .frames
                .iter()
                .flat_map(|fr| fr.get(f).map(labels::label_objects).unwrap_or_default())
                .collect(),
            None => self
                .sample
                .get(field)
                .map(labels::label_objects)
                .unwrap_or_default(),
        }
    }
}

fn label_id(l: &Object) -> Option<ObjectId> {
    l.get("_id").and_then(ObjectId::from_ejson)
}

/// Evaluation state: sample positions in view order and the surviving labels of filtered
/// fields (by sample position).
struct State<'a> {
    ds: &'a Dataset,
    order: Vec<usize>,
    filters: IndexMap<String, HashMap<usize, HashSet<ObjectId>>>,
}

impl<'a> State<'a> {
    /// Labels of a field as the view currently sees them.
    fn labels<'c>(&self, ctx: &'c Ctx<'_>, idx: usize, field: &str) -> Vec<&'c Object> {
        let all = ctx.raw_labels(field);
        match self.filters.get(field) {
            None => all,
            Some(keep) => {
                let keep = keep.get(&idx);
                all.into_iter()
                    .filter(|l| label_id(l).is_some_and(|id| keep.is_some_and(|k| k.contains(&id))))
                    .collect()
            }
        }
    }

    /// The sample as expressions see it: filtered label fields show only remaining labels.
    fn sample_doc<'c>(&self, ctx: &'c Ctx<'_>, idx: usize) -> Cow<'c, Object> {
        let obj: &'c Object = &ctx.sample;
        let touched: Vec<&String> = self
            .filters
            .keys()
            .filter(|f| {
                !f.starts_with("frames.") && obj.get(f.as_str()).is_some_and(labels::is_label_value)
            })
            .collect();
        if touched.is_empty() {
            return Cow::Borrowed(obj);
        }
        let mut copy = obj.clone();
        for field in touched {
            let keep: HashSet<ObjectId> = self
                .labels(ctx, idx, field)
                .into_iter()
                .filter_map(label_id)
                .collect();
            let Some(v) = copy.get_mut(field.as_str()) else {
                continue;
            };
            let list_key = v
                .get("_cls")
                .and_then(Value::as_str)
                .and_then(labels::label_list_key);
            match list_key {
                Some(key) => {
                    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
                        items.retain(|l| {
                            l.as_object()
                                .and_then(label_id)
                                .is_some_and(|id| keep.contains(&id))
                        });
                    }
                }
                None => {
                    if !v
                        .as_object()
                        .and_then(label_id)
                        .is_some_and(|id| keep.contains(&id))
                    {
                        *v = Value::Null;
                    }
                }
            }
        }
        Cow::Owned(copy)
    }

    fn check_label_field(
        &self,
        stage: usize,
        name: &'static str,
        field: &str,
    ) -> Result<(), ViewError> {
        if self.ds.field_label_class(field).is_some() {
            return Ok(());
        }
        let problem = if self.ds.field_exists(field) {
            format!("field '{field}' is not a label field")
        } else {
            format!("field '{field}' does not exist")
        };
        Err(ViewError::Field {
            stage,
            name,
            problem,
        })
    }
}

fn parse_expr(stage: usize, name: &'static str, src: &str) -> Result<Expr, ViewError> {
    expr::parse(src).map_err(|source| ViewError::Expr {
        stage,
        name,
        rendered: source.render(src),
        source,
    })
}

/// Applies the stages in order and returns the selected samples and labels.
pub fn apply(stages: &[ViewStage], ds: &Dataset) -> Result<View, ViewError> {
    let mut st = State {
        ds,
        order: (0..ds.len()).collect(),
        filters: IndexMap::new(),
    };
    for (i, stage) in stages.iter().enumerate() {
        let name = stage_name(stage);
        match stage {
            ViewStage::MatchTags(tags) => {
                let want = tags.as_slice();
                st.order.retain(|&s| {
                    let ctx = Ctx::new(ds, s, &["tags"]);
                    let tags = ctx.sample.get("tags").and_then(Value::as_array);
                    tags.is_some_and(|t| {
                        t.iter()
                            .any(|t| want.iter().any(|w| t.as_str() == Some(w.as_str())))
                    })
                });
            }
            ViewStage::Exists(field) => match field.strip_prefix("frames.") {
                Some(f) => st.order.retain(|&s| {
                    ds.frames(ds.samples()[s].id())
                        .iter()
                        .any(|fr| fr.object().get(f).is_some_and(|v| !v.is_null()))
                }),
                None => {
                    let e = parse_expr(i, name, field)?;
                    let roots = e.root_fields();
                    let docs: Vec<bool> = st
                        .order
                        .iter()
                        .map(|&s| {
                            let ctx = Ctx::new(ds, s, &roots);
                            !matches!(expr::eval(&e, &st.sample_doc(&ctx, s)), Val::Null)
                        })
                        .collect();
                    let mut keep = docs.into_iter();
                    st.order.retain(|_| keep.next().unwrap_or(false));
                }
            },
            ViewStage::FilterLabels(f) => {
                st.check_label_field(i, name, &f.field)?;
                let e = parse_expr(i, name, &f.where_)?;
                let mut kept: HashMap<usize, HashSet<ObjectId>> = HashMap::new();
                for &s in &st.order {
                    let ctx = Ctx::new(ds, s, std::slice::from_ref(&f.field));
                    let ids: HashSet<ObjectId> = st
                        .labels(&ctx, s, &f.field)
                        .into_iter()
                        .filter(|l| expr::matches(&e, l))
                        .filter_map(label_id)
                        .collect();
                    kept.insert(s, ids);
                }
                if f.only_matches.unwrap_or(true) {
                    st.order
                        .retain(|s| kept.get(s).is_some_and(|k| !k.is_empty()));
                }
                st.filters.insert(f.field.clone(), kept);
            }
            ViewStage::MatchLabels(m) => {
                for field in m.fields.as_slice() {
                    st.check_label_field(i, name, field)?;
                }
                let e = parse_expr(i, name, &m.where_)?;
                let fields = m.fields.as_slice();
                let keep: Vec<bool> = st
                    .order
                    .iter()
                    .map(|&s| {
                        let ctx = Ctx::new(ds, s, fields);
                        fields.iter().any(|f| {
                            st.labels(&ctx, s, f)
                                .into_iter()
                                .any(|l| expr::matches(&e, l))
                        })
                    })
                    .collect();
                let mut keep = keep.into_iter();
                st.order.retain(|_| keep.next().unwrap_or(false));
            }
            ViewStage::Select(ids) => {
                let mut wanted = Vec::new();
                for raw in ids.as_slice() {
                    let id = ObjectId::parse(raw).map_err(|_| ViewError::InvalidId {
                        stage: i,
                        id: raw.clone(),
                    })?;
                    if ds.sample_by_id(id).is_none() {
                        return Err(ViewError::UnknownSample { stage: i, id });
                    }
                    if !wanted.contains(&id) {
                        wanted.push(id);
                    }
                }
                let present: HashMap<ObjectId, usize> = st
                    .order
                    .iter()
                    .map(|&s| (ds.samples()[s].id(), s))
                    .collect();
                st.order = wanted
                    .iter()
                    .filter_map(|id| present.get(id).copied())
                    .collect();
            }
            ViewStage::SortBy(sort) => {
                let (src, reverse) = match sort {
                    SortBy::Field(f) => (f.as_str(), false),
                    SortBy::Expr(e) => (e.expr.as_str(), e.reverse),
                };
                let e = parse_expr(i, name, src)?;
                let roots = e.root_fields();
                let keys: Vec<SortKey> = st
                    .order
                    .iter()
                    .map(|&s| {
                        let ctx = Ctx::new(ds, s, &roots);
                        SortKey::from(expr::eval(&e, &st.sample_doc(&ctx, s)))
                    })
                    .collect();
                let mut perm: Vec<usize> = (0..st.order.len()).collect();
                // Stable in both directions: ties keep their current order.
                perm.sort_by(|&a, &b| {
                    let o = keys[a].cmp(&keys[b]);
                    if reverse { o.reverse() } else { o }
                });
                st.order = perm.into_iter().map(|p| st.order[p]).collect();
            }
            ViewStage::Skip(n) => {
                let n = usize::try_from(*n)
                    .unwrap_or(usize::MAX)
                    .min(st.order.len());
                st.order.drain(..n);
            }
            ViewStage::Limit(n) => st.order.truncate(usize::try_from(*n).unwrap_or(usize::MAX)),
            ViewStage::Take(t) => {
                let k = usize::try_from(t.size)
                    .unwrap_or(usize::MAX)
                    .min(st.order.len());
                let mut rng = SplitMix64(t.seed);
                // Partial Fisher-Yates: the first k positions become a uniform random sample.
                for j in 0..k {
                    let r = j + rng.below(st.order.len() - j);
                    st.order.swap(j, r);
                }
                st.order.truncate(k);
            }
        }
    }
    let sample_ids = st.order.iter().map(|&s| ds.samples()[s].id()).collect();
    let filtered = st
        .filters
        .keys()
        .map(|field| {
            let per_sample = st
                .order
                .iter()
                .map(|&s| {
                    let ctx = Ctx::new(ds, s, std::slice::from_ref(field));
                    (
                        ds.samples()[s].id(),
                        st.labels(&ctx, s, field)
                            .into_iter()
                            .filter_map(label_id)
                            .collect(),
                    )
                })
                .collect();
            (field.clone(), per_sample)
        })
        .collect();
    Ok(View {
        sample_ids,
        filtered,
    })
}

/// An owned sort key (the samples it came from are not kept parsed).
#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    Null,
    Num(f64),
    Str(String),
    Obj,
    List(Vec<SortKey>),
    Bool(bool),
}

impl From<Val<'_>> for SortKey {
    fn from(v: Val<'_>) -> Self {
        match v {
            Val::Null => SortKey::Null,
            Val::Num(n) => SortKey::Num(n),
            Val::Str(s) => SortKey::Str(s.into_owned()),
            Val::Obj(_) => SortKey::Obj,
            Val::List(l) => SortKey::List(l.into_iter().map(SortKey::from).collect()),
            Val::Bool(b) => SortKey::Bool(b),
        }
    }
}

impl SortKey {
    /// Order across types, like MongoDB's: null < numbers < strings < objects < lists <
    /// booleans.
    fn rank(&self) -> u8 {
        match self {
            SortKey::Null => 0,
            SortKey::Num(_) => 1,
            SortKey::Str(_) => 2,
            SortKey::Obj => 3,
            SortKey::List(_) => 4,
            SortKey::Bool(_) => 5,
        }
    }

    fn cmp(&self, other: &SortKey) -> Ordering {
        match (self, other) {
            (SortKey::Num(x), SortKey::Num(y)) => x.total_cmp(y),
            (SortKey::Str(x), SortKey::Str(y)) => x.cmp(y),
            (SortKey::Bool(x), SortKey::Bool(y)) => x.cmp(y),
            (SortKey::List(x), SortKey::List(y)) => x
                .iter()
                .zip(y)
                .map(|(p, q)| p.cmp(q))
                .find(|o| o.is_ne())
                .unwrap_or(x.len().cmp(&y.len())),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fully specified, the same on every platform,
/// so `take` with a seed selects the same samples everywhere and in every release.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0) by multiply-shift; the bias is below 2^-32 for any n a
    /// dataset can have.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::fields::FieldType;
    use crate::manifest::types::{FilterLabels, MatchLabels, OneOrMany, SortExpr, Take};
    use proptest::prelude::*;
    use serde_json::json;
    use std::path::Path;

    fn fixture(name: &str) -> Dataset {
        Dataset::load(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/fiftyone-1.22.1")
                .join(name),
        )
        .unwrap()
    }

    /// n samples; sample i has tag `t{i%3}`, `n_int` = i, and i%4 detections with confidence
    /// 0.1, 0.2, ... labelled car/bus alternately.
    fn synthetic(n: usize) -> Dataset {
        let samples = (0..n)
            .map(|i| {
                let dets: Vec<Value> = (0..i % 4)
                    .map(|j| {
                        json!({"_id": ObjectId::derive(&[b"l", &i.to_be_bytes(), &j.to_be_bytes()]).to_ejson(),
                               "_cls": "Detection", "label": if j % 2 == 0 { "car" } else { "bus" },
                               "bounding_box": [0.1, 0.1, 0.2, 0.2], "confidence": (j + 1) as f64 / 10.0})
                    })
                    .collect();
                let v = json!({"_id": ObjectId::derive(&[b"s", &i.to_be_bytes()]).to_ejson(),
                               "filepath": format!("/data/{i}.jpg"), "tags": [format!("t{}", i % 3)], "n_int": i,
                               "ground_truth": {"_cls": "Detections", "detections": dets}});
                v.as_object().unwrap().clone()
            })
            .collect();
        let fields = vec![
            FieldType::Label("Detections".into()).field_doc("ground_truth"),
            FieldType::Int.field_doc("n_int"),
        ];
        let meta = json!({"name": "synthetic", "version": "1.22.1", "media_type": "image", "sample_fields": fields});
        Dataset::from_docs(
            "/nonexistent",
            meta.as_object().unwrap().clone(),
            samples,
            None,
        )
        .unwrap()
    }

    fn ids(ds: &Dataset, idx: &[usize]) -> Vec<ObjectId> {
        idx.iter().map(|&i| ds.samples()[i].id()).collect()
    }

    fn filter(field: &str, w: &str, only: Option<bool>) -> ViewStage {
        ViewStage::FilterLabels(FilterLabels {
            field: field.into(),
            where_: w.into(),
            only_matches: only,
        })
    }

    #[test]
    fn no_stages_selects_everything_in_order() {
        let ds = synthetic(5);
        let v = apply(&[], &ds).unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[0, 1, 2, 3, 4]));
        assert!(v.filtered.is_empty());
    }

    #[test]
    fn match_tags_is_any_of() {
        let ds = synthetic(7);
        let v = apply(
            &[ViewStage::MatchTags(OneOrMany::Many(vec![
                "t0".into(),
                "t2".into(),
            ]))],
            &ds,
        )
        .unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[0, 2, 3, 5, 6]));
        let v = apply(&[ViewStage::MatchTags(OneOrMany::One("t1".into()))], &ds).unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[1, 4]));
    }

    #[test]
    fn exists_means_non_null() {
        let ds = fixture("image-all-label-types");
        assert_eq!(
            apply(&[ViewStage::Exists("cls".into())], &ds)
                .unwrap()
                .len(),
            5
        );
        assert_eq!(
            apply(&[ViewStage::Exists("nope".into())], &ds)
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            apply(&[ViewStage::Exists("metadata.width".into())], &ds)
                .unwrap()
                .len(),
            5
        );
        let video = fixture("video-tracks");
        assert_eq!(
            apply(&[ViewStage::Exists("frames.dets".into())], &video)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            apply(&[ViewStage::Exists("metadata".into())], &video)
                .unwrap()
                .len(),
            0,
            "metadata is null"
        );
    }

    #[test]
    fn filter_labels_keeps_matching_label_ids() {
        let ds = synthetic(6);
        let v = apply(&[filter("ground_truth", "label == 'bus'", None)], &ds).unwrap();
        // Samples with >= 2 detections have a bus (j = 1).
        assert_eq!(v.sample_ids, ids(&ds, &[2, 3]));
        let kept = &v.filtered["ground_truth"];
        assert_eq!(
            kept[&ds.samples()[3].id()],
            vec![ObjectId::derive(&[
                b"l",
                &3usize.to_be_bytes(),
                &1usize.to_be_bytes()
            ])]
        );
        let v = apply(
            &[filter("ground_truth", "label == 'bus'", Some(false))],
            &ds,
        )
        .unwrap();
        assert_eq!(v.len(), 6);
        assert!(v.filtered["ground_truth"][&ds.samples()[1].id()].is_empty());
        assert_eq!(
            v.label_ids(&ds, ds.samples()[2].id(), "ground_truth").len(),
            1
        );
    }

    #[test]
    fn later_stages_see_filtered_labels() {
        let ds = synthetic(8);
        let stages = [
            filter("ground_truth", "confidence >= 0.2", None),
            ViewStage::MatchLabels(MatchLabels {
                fields: OneOrMany::One("ground_truth".into()),
                where_: "label == 'car'".into(),
            }),
        ];
        // After filtering, cars remain only where j = 2 exists (3 detections).
        let v = apply(&stages, &ds).unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[3, 7]));
        let sort = ViewStage::SortBy(SortBy::Expr(SortExpr {
            expr: "count(ground_truth)".into(),
            reverse: true,
        }));
        let v = apply(
            &[
                filter("ground_truth", "confidence > 0.2", Some(false)),
                sort,
            ],
            &ds,
        )
        .unwrap();
        assert_eq!(
            &v.sample_ids[..2],
            &ids(&ds, &[3, 7])[..],
            "only the 3-detection samples keep a label"
        );
    }

    #[test]
    fn filter_labels_on_single_labels_and_frames() {
        let ds = fixture("image-all-label-types");
        let v = apply(&[filter("cls", "label == 'cat'", None)], &ds).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(v.filtered["cls"].values().map(Vec::len).sum::<usize>(), 5);
        let v = apply(
            &[
                filter("cls", "label == 'dog'", Some(false)),
                filter("ground_truth", "label == 'car'", None),
            ],
            &ds,
        )
        .unwrap();
        assert_eq!(v.len(), 5);
        assert!(v.filtered["cls"].values().all(Vec::is_empty));
        assert!(v.filtered["ground_truth"].values().all(|l| l.len() == 1));
        let video = fixture("video-tracks");
        let v = apply(
            &[filter("frames.dets", "label == 'car' && keyframe", None)],
            &video,
        )
        .unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v.filtered["frames.dets"][&video.samples()[0].id()].len(), 1);
    }

    #[test]
    fn label_stages_check_their_fields() {
        let ds = fixture("image-all-label-types");
        let e = apply(&[filter("n_int", "true", None)], &ds)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "view[0] (filter_labels): field 'n_int' is not a label field"
        );
        let e = apply(&[filter("nope", "true", None)], &ds)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "view[0] (filter_labels): field 'nope' does not exist");
        let e = apply(
            &[
                ViewStage::Skip(1),
                filter("ground_truth", "label == ", None),
            ],
            &ds,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ViewError::Expr { stage: 1, source, .. } if source.pos == 9),
            "{e}"
        );
    }

    #[test]
    fn select_keeps_the_given_order_and_rejects_unknown_ids() {
        let ds = synthetic(5);
        let sel = |v: Vec<String>| ViewStage::Select(OneOrMany::Many(v));
        let want = ids(&ds, &[3, 0, 4]);
        let v = apply(&[sel(want.iter().map(ToString::to_string).collect())], &ds).unwrap();
        assert_eq!(v.sample_ids, want);
        let e = apply(&[sel(vec!["6b02536263110a1e76c075f7".into()])], &ds).unwrap_err();
        assert!(matches!(e, ViewError::UnknownSample { .. }));
        let e = apply(&[sel(vec!["xyz".into()])], &ds).unwrap_err();
        assert_eq!(
            e.to_string(),
            "view[0] (select): \"xyz\" is not a sample id (24 hex digits)"
        );
        // A sample excluded by an earlier stage stays excluded.
        let v = apply(
            &[
                ViewStage::MatchTags(OneOrMany::One("t0".into())),
                sel(want.iter().map(ToString::to_string).collect()),
            ],
            &ds,
        )
        .unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[3, 0]));
    }

    #[test]
    fn sort_by_field_and_expr() {
        let ds = synthetic(6);
        let v = apply(
            &[ViewStage::SortBy(SortBy::Expr(SortExpr {
                expr: "n_int".into(),
                reverse: true,
            }))],
            &ds,
        )
        .unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[5, 4, 3, 2, 1, 0]));
        // Ties (count 1 for samples 1 and 5) keep their order, in both directions.
        let by_count = |reverse| {
            ViewStage::SortBy(SortBy::Expr(SortExpr {
                expr: "count(ground_truth)".into(),
                reverse,
            }))
        };
        assert_eq!(
            apply(&[by_count(false)], &ds).unwrap().sample_ids,
            ids(&ds, &[0, 4, 1, 5, 2, 3])
        );
        assert_eq!(
            apply(&[by_count(true)], &ds).unwrap().sample_ids,
            ids(&ds, &[3, 2, 1, 5, 0, 4])
        );
        let v = apply(&[ViewStage::SortBy(SortBy::Field("filepath".into()))], &ds).unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn skip_limit_take() {
        let ds = synthetic(10);
        let v = apply(&[ViewStage::Skip(3), ViewStage::Limit(4)], &ds).unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[3, 4, 5, 6]));
        assert!(apply(&[ViewStage::Skip(u64::MAX)], &ds).unwrap().is_empty());
        let take = |seed| ViewStage::Take(Take { size: 4, seed });
        let a = apply(&[take(51)], &ds).unwrap();
        assert_eq!(a, apply(&[take(51)], &ds).unwrap());
        assert_ne!(a.sample_ids, apply(&[take(52)], &ds).unwrap().sample_ids);
        // Pinned: the same seed must take the same samples on every machine and release.
        let pinned: Vec<usize> = a
            .sample_ids
            .iter()
            .map(|id| ds.samples().iter().position(|s| s.id() == *id).unwrap())
            .collect();
        assert_eq!(pinned, [3, 0, 7, 2]);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 from the reference implementation.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    proptest! {
        #[test]
        fn skip_and_limit_partition(n in 0usize..30, k in 0u64..35) {
            let ds = synthetic(n);
            let head = apply(&[ViewStage::Limit(k)], &ds).unwrap().sample_ids;
            let tail = apply(&[ViewStage::Skip(k)], &ds).unwrap().sample_ids;
            let mut all = head.clone();
            all.extend(tail);
            prop_assert_eq!(all, apply(&[], &ds).unwrap().sample_ids);
            prop_assert_eq!(head.len(), (k as usize).min(n));
        }

        #[test]
        fn take_is_a_deterministic_subset(n in 0usize..30, size in 0u64..35, seed in any::<u64>()) {
            let ds = synthetic(n);
            let stage = [ViewStage::Take(Take { size, seed })];
            let v = apply(&stage, &ds).unwrap().sample_ids;
            prop_assert_eq!(v.len(), (size as usize).min(n));
            let uniq: HashSet<_> = v.iter().collect();
            prop_assert_eq!(uniq.len(), v.len());
            prop_assert!(v.iter().all(|id| ds.sample_by_id(*id).is_some()));
            prop_assert_eq!(v, apply(&stage, &ds).unwrap().sample_ids);
        }

        #[test]
        fn sort_is_a_sorted_permutation(n in 0usize..30, reverse in any::<bool>()) {
            let ds = synthetic(n);
            let stage = [ViewStage::SortBy(SortBy::Expr(SortExpr { expr: "count(ground_truth) * 10 - n_int / 7".into(), reverse }))];
            let v = apply(&stage, &ds).unwrap().sample_ids;
            let mut a = v.clone();
            let mut b = apply(&[], &ds).unwrap().sample_ids;
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
            let key = |id: &ObjectId| {
                let s = ds.sample_by_id(*id).unwrap();
                let i = s.get("n_int").unwrap().as_u64().unwrap() as usize;
                ((i % 4) * 10) as f64 - i as f64 / 7.0
            };
            for w in v.windows(2) {
                if reverse { prop_assert!(key(&w[0]) >= key(&w[1])) } else { prop_assert!(key(&w[0]) <= key(&w[1])) }
            }
        }

        #[test]
        fn filter_labels_only_keeps_matching_labels(n in 0usize..20, threshold in 0.0f64..0.5) {
            let ds = synthetic(n);
            let v = apply(&[filter("ground_truth", &format!("confidence > {threshold}"), Some(false))], &ds).unwrap();
            prop_assert_eq!(v.len(), n);
            for s in ds.samples() {
                let kept = &v.filtered["ground_truth"][&s.id()];
                let want: Vec<ObjectId> = s.label_objects("ground_truth").into_iter()
                    .filter(|l| l["confidence"].as_f64().unwrap() > threshold)
                    .filter_map(label_id).collect();
                prop_assert_eq!(kept, &want);
            }
        }
    }
}
