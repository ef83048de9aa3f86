//! View stages MongoDB can answer, translated into the aggregation pipeline FiftyOne 1.22.1
//! builds for them (`fiftyone/core/stages.py`, each stage's `to_mongo`), so that the server
//! selects a view's samples: `match_tags`, `exists` on a sample field, `select`, `sort_by` on
//! a sample field, `skip` and `limit`; and `match_labels` on sample label fields whose `where`
//! translates exactly (see `where_expr.rs`; annoform's expressions are its own, so that
//! pipeline is annoform's). The first stage that cannot be translated (`take`,
//! `filter_labels`, an expression that is not a plain field or does not translate, a frame
//! field) and every stage after it are evaluated in memory on the samples the pipeline
//! selected.
//!
//! Where the two could disagree:
//! - `sort_by` sorts as MongoDB (and so FiftyOne) does: a list sorts by its smallest element
//!   (largest when reversed) and dates and ids by value, where the in-memory sort compares
//!   lists item by item and does not order dates. Like FiftyOne, no `_id` tie-break is added,
//!   so ties come in MongoDB's order, which is FiftyOne's: a sort alone keeps them in the order
//!   the server read them (the collection's natural order, the in-memory dataset order), but a
//!   sort followed by `limit` is a top-k sort that does not, so there the in-memory evaluation
//!   (stable) may order or cut ties differently. tests/mongodb.rs shows both against FiftyOne.
//! - `limit: 0` is FiftyOne's `{$match: {_id: null}}` (no sample) and `skip: 0` no stage.

use ::mongodb::bson::{Bson, Document, doc, oid};

use super::where_expr;
use crate::dataset::ejson::ObjectId;
use crate::dataset::expr::{self, Expr, Seg};
use crate::dataset::field_path::{FieldPath, Level};
use crate::manifest::types::{SortBy, ViewStage};

/// The leading view stages MongoDB answers, as one pipeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The aggregation pipeline (FiftyOne's stages, in order).
    pub pipeline: Vec<Document>,
    /// How many leading stages it answers; the rest run in memory.
    pub stages: usize,
}

/// How a sample field holds labels: `Some(Some(list key))` for list classes (`detections`),
/// `Some(None)` for a single label, `None` when it is not a label field.
pub type LabelFields<'a> = &'a dyn Fn(&str) -> Option<Option<&'static str>>;

/// Translates the longest prefix of `stages` that MongoDB can answer.
pub fn push_down(stages: &[ViewStage], label_fields: LabelFields<'_>) -> Query {
    let mut q = Query::default();
    for stage in stages {
        let Some(docs) = translate(stage, label_fields) else {
            break;
        };
        q.pipeline.extend(docs);
        q.stages += 1;
    }
    q
}

/// FiftyOne's pipeline for one stage, or `None` when it must run in memory.
fn translate(stage: &ViewStage, label_fields: LabelFields<'_>) -> Option<Vec<Document>> {
    Some(match stage {
        // MatchTags(tags, bool, all).
        ViewStage::MatchTags(m) => {
            let tags = m.tags();
            let test = match (m.holds(), m.all()) {
                (true, false) => doc! {"$in": tags},
                (true, true) => doc! {"$all": tags},
                (false, false) => doc! {"$nin": tags},
                (false, true) => doc! {"$not": {"$all": tags}},
            };
            vec![doc! {"$match": {"tags": test}}]
        }
        // Exists(field, bool): `F(field).exists(bool)` is `{$gt: ["$field", null]}` (false for
        // a missing field and for None), negated for bool=False.
        ViewStage::Exists(e) => {
            let path = sample_path(e.field())?;
            let set = doc! {"$gt": [format!("${path}"), Bson::Null]};
            let test = if e.holds() {
                set
            } else {
                doc! {"$not": set}
            };
            vec![doc! {"$match": {"$expr": test}}]
        }
        // Select(ids, ordered=True): annoform's `select` keeps the given order.
        ViewStage::Select(ids) => {
            let mut wanted: Vec<oid::ObjectId> = Vec::new();
            for raw in ids.as_slice() {
                // An invalid id is reported by the in-memory evaluation.
                let id = oid::ObjectId::from(ObjectId::parse(raw).ok()?);
                if !wanted.contains(&id) {
                    wanted.push(id);
                }
            }
            vec![
                doc! {"$match": {"_id": {"$in": &wanted}}},
                doc! {"$addFields": {"_select_order": {"$indexOfArray": [&wanted, "$_id"]}}},
                doc! {"$sort": {"_select_order": 1}},
                doc! {"$project": {"_select_order": false}},
            ]
        }
        // SortBy(field, reverse): `{$sort: {field: ±1}}`, no tie-break.
        ViewStage::SortBy(sort) => {
            let (src, reverse) = match sort {
                SortBy::Field(f) => (f.as_str(), false),
                SortBy::Expr(e) => (e.expr.as_str(), e.reverse),
            };
            let path = sample_path(src)?;
            vec![doc! {"$sort": {path: if reverse { -1 } else { 1 }}}]
        }
        ViewStage::Skip(0) => Vec::new(),
        ViewStage::Skip(n) => vec![doc! {"$skip": i64::try_from(*n).ok()?}],
        ViewStage::Limit(0) => vec![doc! {"$match": {"_id": Bson::Null}}],
        ViewStage::Limit(n) => vec![doc! {"$limit": i64::try_from(*n).ok()?}],
        ViewStage::MatchLabels(m) => {
            let cond = where_expr::translate(&expr::parse(&m.where_).ok()?)?;
            let mut fields = Vec::new();
            for field in m.fields.as_slice() {
                if FieldPath::split(field).0 == Level::Frame {
                    return None;
                }
                fields.push((field.clone(), label_fields(field)?));
            }
            vec![where_expr::match_labels(&fields, &cond)]
        }
        ViewStage::FilterLabels(_) | ViewStage::Take(_) => return None,
    })
}

/// The database path of a sample field written as an expression (`id` is `_id`), if it is a
/// plain field path (`metadata.width`, `ground_truth.detections.label`): no index, no
/// operator, no frame field.
fn sample_path(src: &str) -> Option<String> {
    if FieldPath::split(src.trim()).0 == Level::Frame {
        return None;
    }
    let Ok(Expr::Path(segs)) = expr::parse(src) else {
        return None;
    };
    let mut keys = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Key(k) if i == 0 && k == "id" => keys.push("_id"),
            Seg::Key(k) => keys.push(k.as_str()),
            Seg::Index(_) => return None,
        }
    }
    Some(keys.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::types::{
        Exists, ExistsWith, FilterLabels, MatchLabels, MatchTags, MatchTagsWith, OneOrMany,
        SortExpr, Take,
    };

    const A: &str = "6b02536263110a1e76c075f7";
    const B: &str = "6b02536263110a1e76c075f8";

    fn no_labels(_: &str) -> Option<Option<&'static str>> {
        None
    }

    fn oid(hex: &str) -> oid::ObjectId {
        oid::ObjectId::parse_str(hex).unwrap()
    }

    /// The pipeline of one stage, which must be pushed.
    fn one(stage: ViewStage) -> Vec<Document> {
        let q = push_down(std::slice::from_ref(&stage), &no_labels);
        assert_eq!(q.stages, 1, "{stage:?} is pushed down");
        q.pipeline
    }

    fn sort_expr(expr: &str, reverse: bool) -> ViewStage {
        ViewStage::SortBy(SortBy::Expr(SortExpr {
            expr: expr.into(),
            reverse,
        }))
    }

    #[test]
    fn match_tags_is_fiftyones_any_of() {
        // dataset.match_tags(["a", "b"])._pipeline()
        assert_eq!(
            one(ViewStage::MatchTags(MatchTags::Tags(OneOrMany::Many(
                vec!["a".into(), "b".into()]
            )))),
            [doc! {"$match": {"tags": {"$in": ["a", "b"]}}}]
        );
        assert_eq!(
            one(ViewStage::MatchTags(OneOrMany::One("a".into()).into())),
            [doc! {"$match": {"tags": {"$in": ["a"]}}}]
        );
    }

    #[test]
    fn match_tags_with_bool_and_all_is_fiftyones() {
        let with = |bool, all| {
            one(ViewStage::MatchTags(MatchTags::With(MatchTagsWith {
                tags: OneOrMany::Many(vec!["a".into(), "b".into()]),
                bool,
                all,
            })))
        };
        // dataset.match_tags(["a", "b"], bool=..., all=...)._pipeline()
        assert_eq!(
            with(true, true),
            [doc! {"$match": {"tags": {"$all": ["a", "b"]}}}]
        );
        assert_eq!(
            with(false, false),
            [doc! {"$match": {"tags": {"$nin": ["a", "b"]}}}]
        );
        assert_eq!(
            with(false, true),
            [doc! {"$match": {"tags": {"$not": {"$all": ["a", "b"]}}}}]
        );
        assert_eq!(
            with(true, false),
            [doc! {"$match": {"tags": {"$in": ["a", "b"]}}}]
        );
    }

    #[test]
    fn exists_false_is_not_greater_than_null() {
        // dataset.exists("score", bool=False)._pipeline()
        assert_eq!(
            one(ViewStage::Exists(Exists::With(ExistsWith {
                field: "score".into(),
                bool: false
            }))),
            [doc! {"$match": {"$expr": {"$not": {"$gt": ["$score", null]}}}}]
        );
    }

    #[test]
    fn exists_is_greater_than_null() {
        // dataset.exists("ground_truth")._pipeline()
        assert_eq!(
            one(ViewStage::Exists("ground_truth".into())),
            [doc! {"$match": {"$expr": {"$gt": ["$ground_truth", null]}}}]
        );
        assert_eq!(
            one(ViewStage::Exists("metadata.width".into())),
            [doc! {"$match": {"$expr": {"$gt": ["$metadata.width", null]}}}]
        );
        assert_eq!(
            one(ViewStage::Exists("id".into())),
            [doc! {"$match": {"$expr": {"$gt": ["$_id", null]}}}]
        );
        for kept in [
            "frames.dets",
            "count(ground_truth) > 2 || null",
            "ground_truth.detections[1]",
            "nope ==",
        ] {
            let q = push_down(&[ViewStage::Exists(kept.into())], &no_labels);
            assert_eq!(q, Query::default(), "{kept} runs in memory");
        }
    }

    #[test]
    fn select_is_fiftyones_ordered_select() {
        // dataset.select([B, A, B], ordered=True)._pipeline()
        let ids = vec![oid(B), oid(A)];
        assert_eq!(
            one(ViewStage::Select(OneOrMany::Many(vec![
                B.into(),
                A.into(),
                B.into()
            ]))),
            [
                doc! {"$match": {"_id": {"$in": &ids}}},
                doc! {"$addFields": {"_select_order": {"$indexOfArray": [&ids, "$_id"]}}},
                doc! {"$sort": {"_select_order": 1}},
                doc! {"$project": {"_select_order": false}},
            ]
        );
        let q = push_down(
            &[ViewStage::Select(OneOrMany::One("xyz".into()))],
            &no_labels,
        );
        assert_eq!(q.stages, 0, "the in-memory evaluation reports the bad id");
    }

    #[test]
    fn sort_by_a_field_has_no_tie_break() {
        // dataset.sort_by("n")._pipeline(), dataset.sort_by("id", reverse=True)._pipeline()
        assert_eq!(
            one(ViewStage::SortBy(SortBy::Field("n".into()))),
            [doc! {"$sort": {"n": 1}}]
        );
        assert_eq!(one(sort_expr("id", true)), [doc! {"$sort": {"_id": -1}}]);
        assert_eq!(
            one(sort_expr("metadata.width", false)),
            [doc! {"$sort": {"metadata.width": 1}}]
        );
        for kept in [
            "count(ground_truth)",
            "n * 2",
            "frames.dets",
            "gt.detections[0]",
        ] {
            assert_eq!(
                push_down(&[sort_expr(kept, false)], &no_labels).stages,
                0,
                "{kept}"
            );
        }
    }

    #[test]
    fn skip_and_limit_are_fiftyones() {
        assert_eq!(one(ViewStage::Skip(3)), [doc! {"$skip": 3_i64}]);
        assert_eq!(one(ViewStage::Skip(0)), Vec::<Document>::new());
        assert_eq!(one(ViewStage::Limit(4)), [doc! {"$limit": 4_i64}]);
        // Limit(0)._pipeline(): no sample.
        assert_eq!(one(ViewStage::Limit(0)), [doc! {"$match": {"_id": null}}]);
        assert_eq!(
            push_down(&[ViewStage::Skip(u64::MAX)], &no_labels).stages,
            0
        );
    }

    #[test]
    fn match_labels_is_pushed_when_its_where_translates() {
        let fields = |f: &str| match f {
            "gt" => Some(Some("detections")),
            "cls" => Some(None),
            _ => None,
        };
        let stage = |fields: Vec<String>, where_: &str| {
            ViewStage::MatchLabels(MatchLabels {
                fields: OneOrMany::Many(fields),
                where_: where_.into(),
            })
        };
        let both = stage(vec!["gt".into(), "cls".into()], "label == 'car'");
        let q = push_down(std::slice::from_ref(&both), &fields);
        let cond = where_expr::translate(&expr::parse("label == 'car'").unwrap()).unwrap();
        assert_eq!(
            q.pipeline,
            [where_expr::match_labels(
                &[("gt".into(), Some("detections")), ("cls".into(), None)],
                &cond
            )]
        );
        for kept in [
            stage(vec!["gt".into()], "occluded"),
            stage(vec!["nope".into()], "label == 'car'"),
            stage(vec!["frames.dets".into()], "label == 'car'"),
            stage(vec!["gt".into()], "label == "),
        ] {
            assert_eq!(
                push_down(std::slice::from_ref(&kept), &fields).stages,
                0,
                "{kept:?}"
            );
        }
    }

    #[test]
    fn the_first_stage_mongodb_cannot_answer_ends_the_pipeline() {
        let filter = ViewStage::FilterLabels(FilterLabels {
            field: "ground_truth".into(),
            where_: "label == 'car'".into(),
            only_matches: None,
        });
        let stages = [
            ViewStage::MatchTags(OneOrMany::One("a".into()).into()),
            ViewStage::Limit(5),
            filter.clone(),
            ViewStage::Skip(1),
        ];
        let q = push_down(&stages, &no_labels);
        assert_eq!(q.stages, 2);
        assert_eq!(
            q.pipeline,
            [
                doc! {"$match": {"tags": {"$in": ["a"]}}},
                doc! {"$limit": 5_i64}
            ]
        );
        assert_eq!(
            push_down(&[filter, ViewStage::Limit(1)], &no_labels).stages,
            0
        );
        let take = ViewStage::Take(Take { size: 2, seed: 0 });
        assert_eq!(push_down(&[ViewStage::Skip(1), take], &no_labels).stages, 1);
    }
}
