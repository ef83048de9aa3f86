//! View stages: which samples (and, after `filter_labels`, which labels) a run covers.
//! Stages apply in order, as in FiftyOne: a `filter_labels` narrows what later
//! `match_labels` and `sort_by` expressions see.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use indexmap::IndexMap;
use serde_json::Value;

use super::dir::{Dataset, Part};
use super::ejson::ObjectId;
use super::expr::{self, Doc, Expr, ExprError, Val};
use super::field_path::{FieldPath, Level};
use super::labels::{self, Object};
use super::rows::{LabelRows, Row};
use crate::manifest::types::{MatchTags, SortBy, ViewStage};

#[cfg(test)]
#[path = "view_reference.rs"]
mod reference;

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
    /// Sample label fields read in part straight from the text (see [`Trim`]); `sample`
    /// holds only their shape (see [`LabelRows::shape`]).
    rows: Vec<(String, LabelRows<'a>)>,
}

/// Label fields a pass reads only through label-level expressions (`frames.<name>` for frame
/// fields), with the label keys those read (`_id` when the field is filtered): their labels
/// are read with only these keys (and the field's `_cls`), as [`LabelRows`] for sample
/// fields of documents not parsed yet.
type Trim = [(String, Vec<String>)];

/// A label as expressions see it: parsed, or read in part from its text.
#[derive(Clone, Copy)]
enum LabelRef<'c> {
    Obj(&'c Object),
    Row(Row<'c>),
}

impl LabelRef<'_> {
    fn id(&self) -> Option<ObjectId> {
        match self {
            LabelRef::Obj(o) => label_id(o),
            LabelRef::Row(r) => r.id(),
        }
    }
}

impl Doc for LabelRef<'_> {
    fn get(&self, key: &str) -> Option<Val<'_>> {
        match self {
            LabelRef::Obj(o) => Doc::get(*o, key),
            LabelRef::Row(r) => r.get(key),
        }
    }

    fn whole(&self) -> Val<'_> {
        match self {
            LabelRef::Obj(o) => o.whole(),
            LabelRef::Row(r) => r.whole(),
        }
    }
}

impl<'a> Ctx<'a> {
    /// Parses the fields a stage reads (`frames.<name>` for frame fields), nothing else.
    fn new<S: AsRef<str>>(ds: &'a Dataset, idx: usize, fields: &[S]) -> Self {
        Self::trimmed(ds, idx, fields, &[])
    }

    /// Like [`Self::new`], the label fields in `trim` read only in part.
    fn trimmed<S: AsRef<str>>(ds: &'a Dataset, idx: usize, fields: &[S], trim: &Trim) -> Self {
        let s = &ds.samples()[idx];
        // What to parse of a top-level key of the sample or of a frame.
        let part = |level: Level, key: &str| -> Option<Part<'_>> {
            let is = |f: &str| FieldPath::split(f) == (level, key);
            fields
                .iter()
                .any(|f| is(f.as_ref()))
                .then(|| match trim.iter().find(|(f, _)| is(f)) {
                    Some(_) if level == Level::Sample => Part::Text,
                    Some((_, keys)) => Part::Labels(keys),
                    None => Part::Whole,
                })
        };
        let frames = if fields
            .iter()
            .any(|f| FieldPath::split(f.as_ref()).0 == Level::Frame)
        {
            ds.frames(s.id())
                .into_iter()
                .map(|f| f.project_parts(&|k| part(Level::Frame, k)))
                .collect()
        } else {
            Vec::new()
        };
        let (mut sample, texts) = s.project_text(&|k| part(Level::Sample, k));
        let mut rows = Vec::new();
        for (field, text) in texts {
            let keys = trim
                .iter()
                .find(|(f, _)| *f == field)
                .map_or(&[][..], |(_, k)| k);
            let value = match LabelRows::read(text.clone(), keys) {
                Some(r) => {
                    let shape = r.shape(r.rows().count());
                    rows.push((field.clone(), r));
                    shape
                }
                // Not shaped like a label value: parsed whole.
                None => serde_json::from_str(&text).unwrap_or_default(),
            };
            sample.to_mut().insert(field, value);
        }
        Ctx {
            sample,
            frames,
            rows,
        }
    }

    /// The field's labels read in part, if it was.
    fn rows(&self, field: &str) -> Option<&LabelRows<'a>> {
        self.rows.iter().find(|(f, _)| f == field).map(|(_, r)| r)
    }

    /// The labels of a field, however they were read; `frames.<name>` gathers them over all
    /// frames.
    fn labels(&self, field: &str) -> Vec<LabelRef<'_>> {
        match self.rows(field) {
            Some(rows) => rows.rows().map(LabelRef::Row).collect(),
            None => self
                .raw_labels(field)
                .into_iter()
                .map(LabelRef::Obj)
                .collect(),
        }
    }

    /// The label objects of a field; `frames.<name>` gathers them over all frames.
    fn raw_labels(&self, field: &str) -> Vec<&Object> {
        match FieldPath::split(field) {
            (Level::Frame, f) => self
                .frames
                .iter()
                .flat_map(|fr| fr.get(f).map(labels::label_objects).unwrap_or_default())
                .collect(),
            (Level::Sample, f) => self
                .sample
                .get(f)
                .map(labels::label_objects)
                .unwrap_or_default(),
        }
    }
}

/// Whether the sample's `tags` hold `tag`.
fn has_tag(sample: &Object, tag: &str) -> bool {
    sample
        .get("tags")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(tag)))
}

fn label_id(l: &Object) -> Option<ObjectId> {
    l.get("_id").and_then(ObjectId::from_ejson)
}

/// A stage checked and compiled once: expressions parsed, ids resolved.
enum Step<'s> {
    MatchTags(&'s MatchTags),
    /// `exists` on a frame field (`frames.<name>` without the prefix), and its `bool`.
    FrameExists(&'s str, bool),
    Exists(Expr, bool),
    FilterLabels {
        field: &'s str,
        expr: Expr,
        only_matches: bool,
    },
    MatchLabels {
        fields: &'s [String],
        expr: Expr,
    },
    Select(Vec<ObjectId>),
    Sort {
        expr: Expr,
        reverse: bool,
    },
    Skip(usize),
    Limit(usize),
    Take(usize, u64),
}

impl Step<'_> {
    /// Whether the step decides each sample on its own (it can share a parse of the sample
    /// with its neighbours).
    fn per_sample(&self) -> bool {
        matches!(
            self,
            Step::MatchTags(_)
                | Step::FrameExists(..)
                | Step::Exists(..)
                | Step::FilterLabels { .. }
                | Step::MatchLabels { .. }
        )
    }

    /// The fields the step reads (`frames.<name>` for frame fields).
    fn fields(&self, out: &mut Vec<String>) {
        let mut add = |f: String| {
            if !out.contains(&f) {
                out.push(f);
            }
        };
        match self {
            Step::MatchTags(_) => add("tags".to_owned()),
            Step::FrameExists(f, _) => add(FieldPath::frame(f).to_string()),
            Step::Exists(e, _) | Step::Sort { expr: e, .. } => {
                e.root_fields().into_iter().for_each(add)
            }
            Step::FilterLabels { field, .. } => add((*field).to_owned()),
            Step::MatchLabels { fields, .. } => fields.iter().cloned().for_each(add),
            Step::Select(_) | Step::Skip(_) | Step::Limit(_) | Step::Take(..) => {}
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Checks every stage in order (the first problem is the one reported) and compiles it.
fn compile<'s>(stages: &'s [ViewStage], ds: &Dataset) -> Result<Vec<Step<'s>>, ViewError> {
    let check_label_field = |stage: usize, name: &'static str, field: &str| {
        let path = FieldPath::parse(field);
        if ds.field_label_class(&path).is_some() {
            return Ok(());
        }
        let problem = if ds.field_exists(&path) {
            format!("field '{field}' is not a label field")
        } else {
            format!("field '{field}' does not exist")
        };
        Err(ViewError::Field {
            stage,
            name,
            problem,
        })
    };
    let mut steps = Vec::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        let name = stage_name(stage);
        steps.push(match stage {
            ViewStage::MatchTags(tags) => Step::MatchTags(tags),
            ViewStage::Exists(e) => match FieldPath::split(e.field()) {
                (Level::Frame, f) => Step::FrameExists(f, e.holds()),
                (Level::Sample, _) => Step::Exists(parse_expr(i, name, e.field())?, e.holds()),
            },
            ViewStage::FilterLabels(f) => {
                check_label_field(i, name, &f.field)?;
                Step::FilterLabels {
                    field: &f.field,
                    expr: parse_expr(i, name, &f.where_)?,
                    only_matches: f.only_matches.unwrap_or(true),
                }
            }
            ViewStage::MatchLabels(m) => {
                for field in m.fields.as_slice() {
                    check_label_field(i, name, field)?;
                }
                Step::MatchLabels {
                    fields: m.fields.as_slice(),
                    expr: parse_expr(i, name, &m.where_)?,
                }
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
                Step::Select(wanted)
            }
            ViewStage::SortBy(sort) => {
                let (src, reverse) = match sort {
                    SortBy::Field(f) => (f.as_str(), false),
                    SortBy::Expr(e) => (e.expr.as_str(), e.reverse),
                };
                Step::Sort {
                    expr: parse_expr(i, name, src)?,
                    reverse,
                }
            }
            ViewStage::Skip(n) => Step::Skip(to_usize(*n)),
            ViewStage::Limit(n) => Step::Limit(to_usize(*n)),
            ViewStage::Take(t) => Step::Take(to_usize(t.size), t.seed),
        });
    }
    Ok(steps)
}

/// The labels of a filtered field that remain on one sample.
#[derive(Clone)]
struct Kept {
    /// The ids of its labels whose id a `filter_labels` kept, in dataset order (ids may
    /// repeat when labels share one).
    ordered: Vec<ObjectId>,
    /// The same ids sorted, to look them up.
    sorted: Vec<ObjectId>,
}

impl Kept {
    fn new(ordered: Vec<ObjectId>) -> Self {
        let mut sorted = ordered.clone();
        sorted.sort_unstable();
        Kept { ordered, sorted }
    }

    fn contains(&self, id: &ObjectId) -> bool {
        self.sorted.binary_search(id).is_ok()
    }
}

/// What the filters of a pass decided for one sample, by filter index.
type Local = Vec<(usize, Kept)>;

/// A sample that stays after a pass: its filters' decisions and its sort key.
type Outcome = (Local, Option<SortKey>);

/// Selections this large are evaluated on several threads (tests use them on tiny ones).
const PARALLEL_MIN: usize = if cfg!(test) { 2 } else { 2048 };

/// A run of per-sample steps, compiled for a pass over the samples.
struct Pass<'p, 's> {
    /// Leading `match_tags` steps: most samples they drop are told by their text alone.
    tag_steps: &'p [Step<'s>],
    rest: &'p [Step<'s>],
    /// The expression of a `sort_by` right after the steps.
    sort: Option<&'p Expr>,
    /// What the steps and `sort` read, and which of those label fields in part.
    fields: &'p [String],
    trim: &'p Trim,
}

/// Evaluation state: sample positions in view order and, per filtered field, the remaining
/// labels by sample position (`None` until a filter on the field has seen the sample).
struct State<'a> {
    ds: &'a Dataset,
    order: Vec<usize>,
    filters: IndexMap<String, Vec<Option<Kept>>>,
}

impl<'a> State<'a> {
    /// What the filters on `field` so far keep of sample `idx` (`None`: every label), `local`
    /// holding what filters of the current pass decided (by filter index).
    fn kept<'k>(&'k self, field: &str, idx: usize, local: &'k Local) -> Option<&'k Kept> {
        let (fi, _, per_sample) = self.filters.get_full(field)?;
        match local.iter().find(|(i, _)| *i == fi) {
            Some((_, kept)) => Some(kept),
            None => per_sample[idx].as_ref(),
        }
    }

    /// Labels of a field as the view currently sees them.
    fn labels<'c>(
        &self,
        ctx: &'c Ctx<'_>,
        idx: usize,
        field: &str,
        local: &Local,
    ) -> Vec<LabelRef<'c>> {
        let mut all = ctx.labels(field);
        if let Some(kept) = self.kept(field, idx, local) {
            all.retain(|l| l.id().is_some_and(|id| kept.contains(&id)));
        }
        all
    }

    /// Narrows a sample-level label field of the parsed sample to the labels its filter
    /// keeps, so that expressions over the sample see only those.
    fn narrow(&self, ctx: &mut Ctx<'_>, idx: usize, field: &str, local: &Local) {
        let Some(kept) = self.kept(field, idx, local) else {
            return;
        };
        if FieldPath::split(field).0 == Level::Frame
            || !ctx.sample.get(field).is_some_and(labels::is_label_value)
        {
            return;
        }
        if let Some(rows) = ctx.rows(field) {
            let visible = rows
                .rows()
                .filter(|r| r.id().is_some_and(|id| kept.contains(&id)))
                .count();
            let shape = rows.shape(visible);
            ctx.sample.to_mut().insert(field.to_owned(), shape);
            return;
        }
        let keep = |v: &Value| {
            v.as_object()
                .and_then(label_id)
                .is_some_and(|id| kept.contains(&id))
        };
        let Some(v) = ctx.sample.to_mut().get_mut(field) else {
            return;
        };
        let list_key = v
            .get("_cls")
            .and_then(Value::as_str)
            .and_then(labels::label_list_key);
        match list_key {
            Some(key) => {
                if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
                    items.retain(keep);
                }
            }
            None => {
                if !keep(v) {
                    *v = Value::Null;
                }
            }
        }
    }

    /// Parses what `fields` name on sample `idx` (`trim`: in part), with filtered label
    /// fields narrowed.
    fn ctx(&self, idx: usize, fields: &[String], trim: &Trim) -> Ctx<'a> {
        let mut ctx = Ctx::trimmed(self.ds, idx, fields, trim);
        for f in fields {
            self.narrow(&mut ctx, idx, f, &Local::new());
        }
        ctx
    }

    /// Runs consecutive per-sample steps (and the sort key of a `sort_by` right after them)
    /// in one pass: each sample is parsed once, for the fields any of them reads, and leaves
    /// at the first step that drops it. Leading `match_tags` steps first look at the text.
    fn run_segment(&mut self, steps: &[Step<'_>], sort: Option<&Expr>) -> Vec<SortKey> {
        let lead = steps
            .iter()
            .take_while(|s| matches!(s, Step::MatchTags(_)))
            .count();
        let (tag_steps, rest) = steps.split_at(lead);
        let mut fields = Vec::new();
        steps.iter().for_each(|s| s.fields(&mut fields));
        if let Some(e) = sort {
            for f in e.root_fields() {
                if !fields.contains(&f) {
                    fields.push(f);
                }
            }
        }
        let filtered: Vec<&str> = self.filters.keys().map(String::as_str).collect();
        let trim = label_only_reads(self.ds, steps, sort, &fields, &filtered);
        let order = std::mem::take(&mut self.order);
        let pass = Pass {
            tag_steps,
            rest,
            sort,
            fields: &fields,
            trim: &trim,
        };
        // Samples are independent: the pass runs on as many threads as there are cores,
        // each on a consecutive part of the selection, and the results join in order.
        let threads = if order.len() >= PARALLEL_MIN {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        };
        let this = &*self;
        let parts: Vec<Vec<(usize, Outcome)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = order
                .chunks(order.len().div_ceil(threads).max(1))
                .map(|part| {
                    let pass = &pass;
                    scope.spawn(move || {
                        part.iter()
                            .filter_map(|&s| this.sample(pass, s).map(|o| (s, o)))
                            .collect()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut keys = Vec::new();
        for (s, (local, key)) in parts.into_iter().flatten() {
            for (fi, kept) in local {
                self.filters[fi][s] = Some(kept);
            }
            keys.extend(key);
            self.order.push(s);
        }
        keys
    }

    /// One sample through a pass: `None` when a step drops it, else what its filters kept and
    /// its sort key.
    fn sample(&self, pass: &Pass<'_, '_>, s: usize) -> Option<Outcome> {
        let mut local = Local::new();
        if !pass.tag_steps.is_empty() {
            // Most samples without the tags are told by their text alone.
            let doc = &self.ds.samples()[s];
            let may_match = |step: &Step<'_>| match step {
                // Selected only with tags the text must contain.
                Step::MatchTags(want) if want.holds() => {
                    want.selects(|w| doc.may_contain_string(w))
                }
                _ => true,
            };
            if !pass.tag_steps.iter().all(may_match) {
                return None;
            }
        }
        // One parse for the tags and what the other steps read.
        let mut ctx = self.ctx(s, pass.fields, pass.trim);
        if !pass
            .tag_steps
            .iter()
            .chain(pass.rest)
            .all(|step| self.passes(step, &mut ctx, s, &mut local))
        {
            return None;
        }
        let key = pass
            .sort
            .map(|e| SortKey::from(expr::eval(e, &*ctx.sample)));
        Some((local, key))
    }

    /// Applies one per-sample step to a parsed sample: whether the sample stays.
    fn passes(&self, step: &Step<'_>, ctx: &mut Ctx<'_>, s: usize, local: &mut Local) -> bool {
        match step {
            Step::MatchTags(want) => want.selects(|w| has_tag(&ctx.sample, w)),
            Step::FrameExists(f, holds) => {
                ctx.frames
                    .iter()
                    .any(|fr| fr.get(*f).is_some_and(|v| !v.is_null()))
                    == *holds
            }
            Step::Exists(e, holds) => !matches!(expr::eval(e, &*ctx.sample), Val::Null) == *holds,
            Step::FilterLabels {
                field,
                expr: e,
                only_matches,
            } => {
                let visible = self.labels(ctx, s, field, local);
                let matching: Vec<ObjectId> = visible
                    .iter()
                    .filter(|l| expr::matches(e, *l))
                    .filter_map(LabelRef::id)
                    .collect();
                // In dataset order, every label whose id matched (ids may repeat).
                let matching = Kept::new(matching);
                let kept: Vec<ObjectId> = ctx
                    .labels(field)
                    .iter()
                    .filter_map(LabelRef::id)
                    .filter(|id| matching.contains(id))
                    .collect();
                let stays = !(*only_matches && kept.is_empty());
                let kept = Kept::new(kept);
                // Every filtered field has its entry (see `apply`).
                if let Some(fi) = self.filters.get_index_of(*field) {
                    local.retain(|(i, _)| *i != fi);
                    local.push((fi, kept));
                }
                self.narrow(ctx, s, field, local);
                stays
            }
            Step::MatchLabels { fields, expr: e } => fields.iter().any(|f| {
                self.labels(ctx, s, f, local)
                    .iter()
                    .any(|l| expr::matches(e, l))
            }),
            Step::Select(_)
            | Step::Sort { .. }
            | Step::Skip(_)
            | Step::Limit(_)
            | Step::Take(..) => true,
        }
    }
}

/// The label fields that `steps` (and a sort expression after them) read only through
/// label-level expressions or for their shape (set or not, how many labels), with the label
/// keys those read.
fn label_only_reads(
    ds: &Dataset,
    steps: &[Step<'_>],
    sort: Option<&Expr>,
    fields: &[String],
    filtered: &[&str],
) -> Vec<(String, Vec<String>)> {
    let mut whole = Vec::new();
    for step in steps {
        match step {
            Step::Exists(e, _) => whole.extend(
                e.root_fields()
                    .into_iter()
                    .filter(|r| !e.reads_only_shape(r)),
            ),
            Step::MatchTags(_) => whole.push("tags".to_owned()),
            Step::FrameExists(..)
            | Step::FilterLabels { .. }
            | Step::MatchLabels { .. }
            | Step::Select(_)
            | Step::Sort { .. }
            | Step::Skip(_)
            | Step::Limit(_)
            | Step::Take(..) => {}
        }
    }
    if let Some(e) = sort {
        whole.extend(
            e.root_fields()
                .into_iter()
                .filter(|r| !e.reads_only_shape(r)),
        );
    }
    // Label fields: those label stages read (checked at compile) or the schema declares.
    let label_stage_target = |f: &String| {
        steps.iter().any(|s| match s {
            Step::FilterLabels { field, .. } => field == f,
            Step::MatchLabels { fields, .. } => fields.contains(f),
            _ => false,
        })
    };
    // Filtered fields are looked up by label id.
    let mut trim: Vec<(String, Vec<String>)> = fields
        .iter()
        .filter(|f| {
            !whole.contains(f)
                && (label_stage_target(f)
                    || ds.declared_label_class(&FieldPath::parse(f)).is_some())
        })
        .map(|f| {
            let ids = filtered.contains(&f.as_str()).then(|| "_id".to_owned());
            // Names missing from a label are looked up in its legacy `attributes` dict.
            let keys = ids.into_iter().chain(["attributes".to_owned()]).collect();
            (f.clone(), keys)
        })
        .collect();
    let mut add = |field: &str, e: &Expr| {
        if let Some((_, have)) = trim.iter_mut().find(|(f, _)| f == field) {
            for k in e.root_fields() {
                if !have.contains(&k) {
                    have.push(k);
                }
            }
        }
    };
    for step in steps {
        match step {
            Step::FilterLabels { field, expr, .. } => add(field, expr),
            Step::MatchLabels { fields, expr } => fields.iter().for_each(|f| add(f, expr)),
            _ => {}
        }
    }
    trim
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
///
/// Stages are checked and compiled first; then runs of per-sample stages (`match_tags`,
/// `exists`, `filter_labels`, `match_labels`, and the keys of a `sort_by` after them) share
/// one parse of each sample, while `select`, `sort_by`, `skip`, `limit` and `take` only
/// reorder or cut the selection.
pub fn apply(stages: &[ViewStage], ds: &Dataset) -> Result<View, ViewError> {
    apply_from(stages, ds, None)
}

/// What the leading stages of a view selected when another evaluator (a database) answered
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    /// How many leading stages were answered.
    pub stages: usize,
    /// The samples they selected, in view order (ids the dataset does not hold are ignored).
    pub ids: Vec<ObjectId>,
}

/// Like [`apply`], the first `from.stages` stages already answered by `from` (every stage is
/// still checked).
pub fn apply_from(
    stages: &[ViewStage],
    ds: &Dataset,
    from: Option<Selected>,
) -> Result<View, ViewError> {
    let steps = compile(stages, ds)?;
    let (done, order) = match from {
        Some(sel) => (
            sel.stages.min(steps.len()),
            sel.ids.iter().filter_map(|id| ds.position(*id)).collect(),
        ),
        None => (0, (0..ds.len()).collect()),
    };
    let mut st = State {
        ds,
        order,
        filters: IndexMap::new(),
    };
    // Filtered fields are listed in the order their first filter appears.
    for step in &steps {
        if let Step::FilterLabels { field, .. } = step {
            st.filters
                .entry((*field).to_owned())
                .or_insert_with(|| vec![None; ds.len()]);
        }
    }
    let mut i = done;
    while i < steps.len() {
        let run = steps[i..].iter().take_while(|s| s.per_sample()).count();
        if run > 0 || matches!(steps[i], Step::Sort { .. }) {
            let sort = match steps.get(i + run) {
                Some(Step::Sort { expr, reverse }) => Some((expr, *reverse)),
                _ => None,
            };
            let keys = st.run_segment(&steps[i..i + run], sort.map(|(e, _)| e));
            i += run;
            if let Some((_, reverse)) = sort {
                let mut perm: Vec<usize> = (0..st.order.len()).collect();
                // Stable in both directions: ties keep their current order.
                perm.sort_by(|&a, &b| {
                    let o = keys[a].cmp(&keys[b]);
                    if reverse { o.reverse() } else { o }
                });
                st.order = perm.into_iter().map(|p| st.order[p]).collect();
                i += 1;
            }
            continue;
        }
        match &steps[i] {
            Step::Select(wanted) => {
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
            Step::Skip(n) => {
                let n = (*n).min(st.order.len());
                st.order.drain(..n);
            }
            Step::Limit(n) => st.order.truncate(*n),
            Step::Take(size, seed) => {
                let k = (*size).min(st.order.len());
                let mut rng = SplitMix64(*seed);
                // Partial Fisher-Yates: the first k positions become a uniform random sample.
                for j in 0..k {
                    let r = j + rng.below(st.order.len() - j);
                    st.order.swap(j, r);
                }
                st.order.truncate(k);
            }
            _ => unreachable!("per-sample steps and sorts run as segments"),
        }
        i += 1;
    }
    let sample_ids = st.order.iter().map(|&s| ds.samples()[s].id()).collect();
    let filtered = st
        .filters
        .iter()
        .map(|(field, per_sample)| {
            let kept = st
                .order
                .iter()
                .map(|&s| {
                    (
                        ds.samples()[s].id(),
                        per_sample[s]
                            .as_ref()
                            .map(|k| k.ordered.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            (field.clone(), kept)
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
    use crate::manifest::types::{
        Exists, ExistsWith, FilterLabels, MatchLabels, MatchTagsWith, OneOrMany, SortExpr, Take,
    };
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;
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
    /// 0.1, 0.2, ... labelled car/bus alternately, the first of each made by `vw` in the
    /// legacy `attributes` dict.
    fn synthetic(n: usize) -> Dataset {
        let samples = (0..n)
            .map(|i| {
                let dets: Vec<Value> = (0..i % 4)
                    .map(|j| {
                        json!({"_id": ObjectId::derive(&[b"l", &i.to_be_bytes(), &j.to_be_bytes()]).to_ejson(),
                               "_cls": "Detection", "label": if j % 2 == 0 { "car" } else { "bus" },
                               "bounding_box": [0.1, 0.1, 0.2, 0.2], "confidence": (j + 1) as f64 / 10.0,
                               "attributes": if j == 0 { json!({"make": {"_cls": "CategoricalAttribute", "value": "vw"}}) } else { json!({}) }})
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
            &[ViewStage::MatchTags(MatchTags::Tags(OneOrMany::Many(
                vec!["t0".into(), "t2".into()],
            )))],
            &ds,
        )
        .unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[0, 2, 3, 5, 6]));
        let v = apply(
            &[ViewStage::MatchTags(OneOrMany::One("t1".into()).into())],
            &ds,
        )
        .unwrap();
        assert_eq!(v.sample_ids, ids(&ds, &[1, 4]));
    }

    #[test]
    fn match_tags_with_bool_and_all_is_fiftyones() {
        let ds = synthetic(7);
        let with = |tags: &[&str], bool, all| {
            let stage = ViewStage::MatchTags(MatchTags::With(MatchTagsWith {
                tags: OneOrMany::Many(tags.iter().map(|t| (*t).to_owned()).collect()),
                bool,
                all,
            }));
            apply(&[stage], &ds).unwrap().sample_ids
        };
        assert_eq!(with(&["t0", "t2"], true, false), ids(&ds, &[0, 2, 3, 5, 6]));
        assert_eq!(with(&["t0", "t2"], false, false), ids(&ds, &[1, 4]));
        assert_eq!(with(&["t0", "t2"], true, true), ids(&ds, &[]));
        assert_eq!(with(&["t0"], true, true), ids(&ds, &[0, 3, 6]));
        assert_eq!(with(&["t0", "t2"], false, true).len(), 7);
        // `$all` of no tags matches nothing, as in MongoDB.
        assert_eq!(with(&[], true, true), ids(&ds, &[]));
        assert_eq!(with(&[], false, true).len(), 7);
    }

    #[test]
    fn exists_false_selects_missing_and_null() {
        let ds = fixture("image-all-label-types");
        let absent = |field: &str| {
            let stage = ViewStage::Exists(Exists::With(ExistsWith {
                field: field.into(),
                bool: false,
            }));
            apply(&[stage], &ds).unwrap().len()
        };
        assert_eq!(absent("cls"), 0);
        assert_eq!(absent("nope"), 5);
        let video = fixture("video-tracks");
        let stage = |field: &str| {
            ViewStage::Exists(Exists::With(ExistsWith {
                field: field.into(),
                bool: false,
            }))
        };
        assert_eq!(
            apply(&[stage("metadata")], &video).unwrap().len(),
            1,
            "null"
        );
        assert_eq!(apply(&[stage("frames.dets")], &video).unwrap().len(), 0);
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
                ViewStage::MatchTags(OneOrMany::One("t0".into()).into()),
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

    /// Asserts that the fused evaluation selects the same samples and labels as the
    /// straightforward one, filtered fields in the same order.
    fn same_as_reference(stages: &[ViewStage], ds: &Dataset) -> Result<(), TestCaseError> {
        let fused = apply(stages, ds);
        let plain = reference::apply(stages, ds);
        match (fused, plain) {
            (Ok(f), Ok(p)) => {
                prop_assert_eq!(
                    f.filtered.keys().collect::<Vec<_>>(),
                    p.filtered.keys().collect::<Vec<_>>()
                );
                prop_assert_eq!(f, p);
            }
            (f, p) => prop_assert_eq!(f.map_err(|e| e.to_string()), p.map_err(|e| e.to_string())),
        }
        Ok(())
    }

    /// One stage of any kind over [`synthetic`] datasets.
    fn any_stage() -> impl Strategy<Value = ViewStage> {
        let tags = (
            prop::sample::subsequence(vec!["t0", "t1", "t2", "t9"], 0..3),
            prop::option::of((any::<bool>(), any::<bool>())),
        )
            .prop_map(|(t, with)| {
                let tags = OneOrMany::Many(t.into_iter().map(String::from).collect());
                ViewStage::MatchTags(match with {
                    None => MatchTags::Tags(tags),
                    Some((bool, all)) => MatchTags::With(MatchTagsWith { tags, bool, all }),
                })
            });
        let exists = prop::sample::select(vec![
            "n_int",
            "ground_truth",
            "nope",
            "ground_truth.detections",
            "count(ground_truth) > 2 || null",
        ])
        .prop_flat_map(|f| {
            prop_oneof![
                Just(ViewStage::Exists(f.into())),
                any::<bool>().prop_map(move |bool| {
                    ViewStage::Exists(Exists::With(ExistsWith {
                        field: f.into(),
                        bool,
                    }))
                }),
            ]
        });
        let wheres = prop::sample::select(vec![
            "confidence > 0.15",
            "label == 'car'",
            "label == 'bus' || confidence >= 0.3",
            "label in ['car', 'truck'] && confidence < 0.25",
            "!(confidence > 0.2)",
            "true",
            "exists(bounding_box) && id != ''",
            "make == 'vw'",
        ]);
        let filter = (wheres.clone(), prop::option::of(any::<bool>()))
            .prop_map(|(w, only)| filter("ground_truth", w, only));
        let match_labels = wheres.prop_map(|w| {
            ViewStage::MatchLabels(MatchLabels {
                fields: OneOrMany::One("ground_truth".into()),
                where_: w.into(),
            })
        });
        let sort = (
            prop::sample::select(vec![
                "count(ground_truth)",
                "n_int",
                "count(ground_truth) * 10 - n_int / 7",
                "ground_truth",
                "ground_truth.detections[1].confidence",
            ]),
            any::<bool>(),
        )
            .prop_map(|(e, reverse)| {
                ViewStage::SortBy(SortBy::Expr(SortExpr {
                    expr: e.into(),
                    reverse,
                }))
            });
        prop_oneof![
            tags,
            exists,
            filter,
            match_labels,
            sort,
            Just(ViewStage::SortBy(SortBy::Field("filepath".into()))),
            (0u64..8).prop_map(ViewStage::Skip),
            (0u64..12).prop_map(ViewStage::Limit),
            (0u64..12, any::<u64>()).prop_map(|(size, seed)| ViewStage::Take(Take { size, seed })),
        ]
    }

    #[test]
    fn fused_evaluation_matches_the_reference_on_files() {
        let ds = fixture("image-all-label-types");
        let chains = [
            vec![
                filter("cls", "label == 'dog'", Some(false)),
                filter("ground_truth", "label == 'car'", None),
            ],
            vec![
                filter("ground_truth", "true", None),
                ViewStage::Exists("ground_truth".into()),
                ViewStage::Limit(3),
            ],
            vec![
                ViewStage::Skip(1),
                filter("ground_truth", "label == ", None),
            ],
            vec![
                filter("ground_truth", "label != 'car'", Some(false)),
                ViewStage::SortBy(SortBy::Expr(SortExpr {
                    expr: "count(ground_truth)".into(),
                    reverse: true,
                })),
                filter("ground_truth", "true", None),
            ],
        ];
        for chain in &chains {
            same_as_reference(chain, &ds).unwrap();
        }
        let video = fixture("video-tracks");
        let chains = [
            vec![filter("frames.dets", "label == 'car' && keyframe", None)],
            vec![
                ViewStage::Exists("frames.dets".into()),
                filter("frames.dets", "true", Some(false)),
                ViewStage::MatchLabels(MatchLabels {
                    fields: OneOrMany::One("frames.dets".into()),
                    where_: "label == 'car'".into(),
                }),
            ],
        ];
        for chain in &chains {
            same_as_reference(chain, &video).unwrap();
        }
    }

    proptest! {
        #[test]
        fn fused_evaluation_matches_the_reference(n in 0usize..25, stages in prop::collection::vec(any_stage(), 0..7)) {
            let mut ds = synthetic(n);
            same_as_reference(&stages, &ds)?;
            // Read back from its files, samples are parsed only in part.
            let dir = tempfile::tempdir().unwrap();
            ds.save_as(dir.path()).unwrap();
            same_as_reference(&stages, &Dataset::load(dir.path()).unwrap())?;
        }

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
