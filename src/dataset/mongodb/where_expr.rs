//! `where` expressions (evaluated on each label, see [`crate::dataset::expr`]) as MongoDB
//! aggregation expressions on the label in the variable `$$label`, for the expressions whose
//! meaning MongoDB's operators keep exactly:
//!
//! - a label key (`label`, `confidence`, `occluded`; a name missing from the label read from its
//!   legacy `attributes` dict's `value`, as in memory) compared with a literal: `==`, `!=`
//!   (structural, `null` for a missing value), `<`, `<=`, `>`, `>=` (false unless both are
//!   numbers, neither NaN, or both strings);
//! - `key in [literals]`, `'literal' in key` (list membership or substring), `exists(key)`;
//! - `&&`, `||`, `!` of those, and `true` / `false`.
//!
//! Anything else (arithmetic, `count`, `len`, indexes, nested keys, `id`, a key used as a truth
//! value, whose truthiness differs in MongoDB) is not translated: the stage runs in memory.

use ::mongodb::bson::{Bson, Document, doc};

use crate::dataset::expr::{BinOp, Expr, Func, Seg};

/// The MongoDB expression that holds exactly when `e` holds for the label in `$$label`.
pub fn translate(e: &Expr) -> Option<Bson> {
    Some(match e {
        Expr::Bool(b) => Bson::Boolean(*b),
        Expr::Not(a) => Bson::Document(doc! {"$not": [translate(a)?]}),
        Expr::Bin(BinOp::And, a, b) => {
            Bson::Document(doc! {"$and": [translate(a)?, translate(b)?]})
        }
        Expr::Bin(BinOp::Or, a, b) => Bson::Document(doc! {"$or": [translate(a)?, translate(b)?]}),
        Expr::Call(Func::Exists, a) => Bson::Document(doc! {"$ne": [key(a)?, Bson::Null]}),
        Expr::Bin(op @ (BinOp::Eq | BinOp::Ne), a, b) => {
            let (k, lit) = key_and_literal(a, b)?;
            let name = if *op == BinOp::Eq { "$eq" } else { "$ne" };
            Bson::Document(doc! {name: [k, lit]})
        }
        Expr::Bin(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), a, b) => order(*op, a, b)?,
        Expr::Bin(BinOp::In, a, b) => membership(a, b)?,
        _ => return None,
    })
}

/// A label key's value, `null` when missing (`$ifNull` also falls back to the legacy
/// `attributes` dict, as the in-memory lookup does).
fn key(e: &Expr) -> Option<Bson> {
    let Expr::Path(segs) = e else { return None };
    let [Seg::Key(k)] = segs.as_slice() else {
        return None;
    };
    if k == "id" || k == "_id" || k.starts_with('$') {
        return None;
    }
    Some(Bson::Document(doc! {
        "$ifNull": [format!("$$label.{k}"), format!("$$label.attributes.{k}.value"), Bson::Null]
    }))
}

/// A literal as BSON (numbers as doubles: MongoDB compares numbers by value).
fn literal(e: &Expr) -> Option<Bson> {
    Some(match e {
        Expr::Null => Bson::Null,
        Expr::Bool(b) => Bson::Boolean(*b),
        Expr::Num(n) => Bson::Double(*n),
        Expr::Neg(a) => match a.as_ref() {
            Expr::Num(n) => Bson::Double(-n),
            _ => return None,
        },
        Expr::Str(s) => Bson::String(s.clone()),
        _ => return None,
    })
}

/// `key op literal` or `literal op key`, as (key, literal).
fn key_and_literal(a: &Expr, b: &Expr) -> Option<(Bson, Bson)> {
    sides(a, b).map(|(k, l, _)| (k, l))
}

/// `key op literal` or `literal op key`, as (key, literal, whether swapped).
fn sides(a: &Expr, b: &Expr) -> Option<(Bson, Bson, bool)> {
    match (key(a), literal(b)) {
        (Some(k), Some(l)) => Some((k, l, false)),
        _ => Some((key(b)?, literal(a)?, true)),
    }
}

/// An ordering comparison: false unless both sides are numbers (neither NaN) or both strings.
fn order(op: BinOp, a: &Expr, b: &Expr) -> Option<Bson> {
    let (k, lit, swapped) = sides(a, b)?;
    let op = match (op, swapped) {
        (BinOp::Lt, false) | (BinOp::Gt, true) => "$lt",
        (BinOp::Le, false) | (BinOp::Ge, true) => "$lte",
        (BinOp::Gt, false) | (BinOp::Lt, true) => "$gt",
        _ => "$gte",
    };
    let same_type = match &lit {
        // NaN sorts below every number in MongoDB; in memory it orders with nothing.
        Bson::Double(_) => doc! {"$and": [
            {"$isNumber": k.clone()},
            {"$gte": [k.clone(), f64::NEG_INFINITY]},
        ]},
        Bson::String(_) => doc! {"$eq": [{"$type": k.clone()}, "string"]},
        _ => return Some(Bson::Boolean(false)),
    };
    Some(Bson::Document(doc! {"$and": [same_type, {op: [k, lit]}]}))
}

/// `key in [literals]` (equal to one of them) or `'text' in key` (an item of a list key, or a
/// substring of a string key).
fn membership(a: &Expr, b: &Expr) -> Option<Bson> {
    if let (Some(k), Expr::List(items)) = (key(a), b) {
        let items = items.iter().map(literal).collect::<Option<Vec<_>>>()?;
        return Some(Bson::Document(doc! {"$in": [k, items]}));
    }
    let (lit, k) = (literal(a)?, key(b)?);
    let in_string = match &lit {
        Bson::String(_) => Bson::Document(doc! {"$cond": [
            {"$eq": [{"$type": k.clone()}, "string"]},
            {"$gte": [{"$indexOfCP": [k.clone(), lit.clone()]}, 0]},
            false,
        ]}),
        _ => Bson::Boolean(false),
    };
    Some(Bson::Document(doc! {"$cond": [
        {"$isArray": k.clone()},
        {"$in": [lit, k]},
        in_string,
    ]}))
}

/// The `$match` stage for `match_labels`: a sample stays when a label of one of `fields`
/// satisfies `cond` (on `$$label`). Each field is `(path, list key)`: the labels are the items
/// of `path.<list key>` for list classes, else the label at `path` when it is a document.
pub fn match_labels(fields: &[(String, Option<&str>)], cond: &Bson) -> Document {
    let any: Vec<Bson> = fields
        .iter()
        .map(|(path, list)| {
            Bson::Document(match list {
                Some(list) => doc! {"$gt": [
                    {"$size": {"$filter": {
                        "input": {"$ifNull": [format!("${path}.{list}"), []]},
                        "as": "label",
                        "cond": cond.clone(),
                    }}},
                    0,
                ]},
                None => doc! {"$let": {
                    "vars": {"label": format!("${path}")},
                    "in": {"$and": [{"$eq": [{"$type": "$$label"}, "object"]}, cond.clone()]},
                }},
            })
        })
        .collect();
    doc! {"$match": {"$expr": {"$or": any}}}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::expr::parse;

    fn tr(src: &str) -> Option<Bson> {
        translate(&parse(src).unwrap())
    }

    fn k(name: &str) -> Bson {
        Bson::Document(doc! {
            "$ifNull": [format!("$$label.{name}"), format!("$$label.attributes.{name}.value"), null]
        })
    }

    #[test]
    fn equality_is_with_a_literal() {
        assert_eq!(
            tr("label == 'car'"),
            Some(Bson::Document(doc! {"$eq": [k("label"), "car"]}))
        );
        assert_eq!(
            tr("null != confidence"),
            Some(Bson::Document(doc! {"$ne": [k("confidence"), null]}))
        );
        assert_eq!(
            tr("occluded == true && !(label == 'bus')"),
            Some(Bson::Document(doc! {"$and": [
                {"$eq": [k("occluded"), true]},
                {"$not": [{"$eq": [k("label"), "bus"]}]},
            ]}))
        );
    }

    #[test]
    fn orderings_need_both_sides_of_one_type() {
        let num = doc! {"$and": [{"$isNumber": k("confidence")}, {"$gte": [k("confidence"), f64::NEG_INFINITY]}]};
        assert_eq!(
            tr("confidence > 0.5"),
            Some(Bson::Document(
                doc! {"$and": [num.clone(), {"$gt": [k("confidence"), 0.5]}]}
            ))
        );
        // Swapped sides flip the operator.
        assert_eq!(
            tr("0.5 > confidence"),
            Some(Bson::Document(
                doc! {"$and": [num, {"$lt": [k("confidence"), 0.5]}]}
            ))
        );
        assert_eq!(
            tr("label <= 'm'"),
            Some(Bson::Document(doc! {"$and": [
                {"$eq": [{"$type": k("label")}, "string"]},
                {"$lte": [k("label"), "m"]},
            ]}))
        );
        assert_eq!(tr("confidence < null"), Some(Bson::Boolean(false)));
        let negative = tr("confidence >= -1").unwrap();
        assert_eq!(
            negative.as_document().unwrap().get_array("$and").unwrap()[1],
            Bson::Document(doc! {"$gte": [k("confidence"), -1.0]})
        );
    }

    #[test]
    fn membership_and_exists() {
        assert_eq!(
            tr("label in ['car', 'bus']"),
            Some(Bson::Document(doc! {"$in": [k("label"), ["car", "bus"]]}))
        );
        assert!(tr("'checked' in tags").is_some());
        assert_eq!(
            tr("exists(confidence)"),
            Some(Bson::Document(doc! {"$ne": [k("confidence"), null]}))
        );
    }

    #[test]
    fn what_mongodb_would_read_otherwise_is_not_translated() {
        for src in [
            "occluded",
            "occluded && label == 'car'",
            "confidence * 2 > 1",
            "count(tags) > 0",
            "len(label) == 3",
            "bounding_box[0] > 0.1",
            "id == '6b02536263110a1e76c075c0'",
            "metadata.width > 3",
            "label == other",
            "label in tags",
            "label + 's' == 'cars'",
        ] {
            assert_eq!(tr(src), None, "{src}");
        }
    }

    #[test]
    fn match_labels_looks_in_lists_and_single_labels() {
        let cond = tr("label == 'car'").unwrap();
        let m = match_labels(
            &[("gt".into(), Some("detections")), ("cls".into(), None)],
            &cond,
        );
        assert_eq!(
            m,
            doc! {"$match": {"$expr": {"$or": [
                {"$gt": [{"$size": {"$filter": {
                    "input": {"$ifNull": ["$gt.detections", []]},
                    "as": "label",
                    "cond": cond.clone(),
                }}}, 0]},
                {"$let": {
                    "vars": {"label": "$cls"},
                    "in": {"$and": [{"$eq": [{"$type": "$$label"}, "object"]}, cond]},
                }},
            ]}}}
        );
    }
}
