//! The straightforward evaluation of view stages, one pass over the samples per stage: the
//! oracle the fused evaluation in the parent module is checked against.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde_json::Value;

use super::super::dir::Dataset;
use super::super::ejson::ObjectId;
use super::super::expr::{self, Val};
use super::super::field_path::{FieldPath, Level};
use super::super::labels::{self, Object};
use super::{Ctx, SortKey, SplitMix64, View, ViewError, has_tag, label_id, parse_expr, stage_name};
use crate::manifest::types::{SortBy, ViewStage};

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
                FieldPath::split(f).0 == Level::Sample
                    && obj.get(f.as_str()).is_some_and(labels::is_label_value)
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
        let path = FieldPath::parse(field);
        if self.ds.field_label_class(&path).is_some() {
            return Ok(());
        }
        let problem = if self.ds.field_exists(&path) {
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
            ViewStage::MatchTags(want) => {
                st.order.retain(|&s| {
                    let ctx = Ctx::new(ds, s, &["tags"]);
                    want.selects(|w| has_tag(&ctx.sample, w))
                });
            }
            ViewStage::Exists(exists) => match FieldPath::split(exists.field()) {
                (Level::Frame, f) => st.order.retain(|&s| {
                    ds.frames(ds.samples()[s].id())
                        .iter()
                        .any(|fr| fr.object().get(f).is_some_and(|v| !v.is_null()))
                        == exists.holds()
                }),
                (Level::Sample, _) => {
                    let e = parse_expr(i, name, exists.field())?;
                    let roots = e.root_fields();
                    let docs: Vec<bool> = st
                        .order
                        .iter()
                        .map(|&s| {
                            let ctx = Ctx::new(ds, s, &roots);
                            !matches!(expr::eval(&e, &*st.sample_doc(&ctx, s)), Val::Null)
                                == exists.holds()
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
                        SortKey::from(expr::eval(&e, &*st.sample_doc(&ctx, s)))
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
