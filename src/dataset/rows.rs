//! A label field's value read in part straight from its JSON text: per label, its id and
//! where the values of a few keys are, nothing allocated per label. View stages evaluate
//! `where` expressions on these rows ([`Row`] is an [`expr::Doc`]); a value is parsed only
//! when an expression reads it whole (an object or a list), scalars are read in place.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use serde_json::{Map, Value};

use super::ejson::ObjectId;
use super::expr::{self, Val};
use super::labels;
use super::scan;

/// The keys holding the labels of list classes (see [`labels::label_list_key`]).
const LIST_KEYS: [&str; 4] = ["classifications", "detections", "polylines", "keypoints"];

/// A label value (or null) read in part.
pub struct LabelRows<'t> {
    text: Cow<'t, str>,
    /// The value's `_cls`; `None` when the value is null.
    cls: Option<String>,
    rows: Vec<RowData>,
    /// The kept entries of every label, each label's a consecutive run.
    entries: Vec<Entry>,
}

struct RowData {
    id: Option<ObjectId>,
    entries: Range<usize>,
}

struct Entry {
    key: Key,
    value: Range<usize>,
    /// The value parsed, once an expression reads it whole.
    parsed: OnceCell<Value>,
}

enum Key {
    Span(Range<usize>),
    /// A key written with escapes, unescaped.
    Owned(Box<str>),
}

impl<'t> LabelRows<'t> {
    /// Reads `text` (a label value, or null) keeping in each label the keys in `keep` (its
    /// id always). `None` when the text is not shaped like a label value (a `_cls` naming a
    /// label class, its list of labels a list): such values are for the caller to parse.
    pub fn read(text: Cow<'t, str>, keep: &[String]) -> Option<Self> {
        let mut out = LabelRows {
            text: Cow::Borrowed(""),
            cls: None,
            rows: Vec::new(),
            entries: Vec::new(),
        };
        match text.as_bytes().first() {
            Some(b'n') => {
                out.text = text;
                return Some(out);
            }
            Some(b'{') => {}
            _ => return None,
        }
        // The last occurrence of a key wins, as in a parsed object.
        let mut cls = None;
        let mut lists: [Option<Range<usize>>; 4] = Default::default();
        for (k, span) in scan::members(&text) {
            if k == "_cls" {
                cls = Some(serde_json::from_str::<String>(&text[span]).ok()?);
            } else if let Some(i) = LIST_KEYS.iter().position(|l| *l == k) {
                lists[i] = Some(span);
            }
        }
        let cls = cls.filter(|c| !c.ends_with("Metadata"))?;
        match labels::label_list_key(&cls) {
            Some(list_key) => {
                let at = LIST_KEYS.iter().position(|l| *l == list_key)?;
                if let Some(span) = lists[at].clone() {
                    let list = &text[span.clone()];
                    if !list.starts_with('[') {
                        return None;
                    }
                    for item in scan::items(list) {
                        let at = span.start + item.start..span.start + item.end;
                        // Items that are not objects are not labels.
                        if text.as_bytes().get(at.start) == Some(&b'{') {
                            out.push_row(&text, at, keep);
                        }
                    }
                }
            }
            None => out.push_row(&text, 0..text.len(), keep),
        }
        out.cls = Some(cls);
        out.text = text;
        Some(out)
    }

    /// Adds the label at `span` of `text`.
    fn push_row(&mut self, text: &str, span: Range<usize>, keep: &[String]) {
        let start = self.entries.len();
        let mut id = None;
        let label = &text[span.clone()];
        for (k, v) in scan::members(label) {
            let value = span.start + v.start..span.start + v.end;
            if k == "_id" {
                id = read_id(&text[value.clone()]);
            }
            if keep.iter().any(|x| *x == k) {
                let key = match k {
                    // Borrowed keys are slices of `label`: where in `text`.
                    Cow::Borrowed(b) => {
                        let at = span.start + (b.as_ptr() as usize - label.as_ptr() as usize);
                        Key::Span(at..at + b.len())
                    }
                    Cow::Owned(o) => Key::Owned(o.into_boxed_str()),
                };
                self.entries.push(Entry {
                    key,
                    value,
                    parsed: OnceCell::new(),
                });
            }
        }
        self.rows.push(RowData {
            id,
            entries: start..self.entries.len(),
        });
    }

    /// The labels, in order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(move |data| Row { of: self, data })
    }

    /// The value as expressions that read only its shape (set or not, how many labels) see
    /// it when `visible` of its labels remain: its class and as many empty labels.
    pub fn shape(&self, visible: usize) -> Value {
        let Some(cls) = &self.cls else {
            return Value::Null;
        };
        let mut out = Map::new();
        out.insert("_cls".to_owned(), Value::String(cls.clone()));
        match labels::label_list_key(cls) {
            Some(key) => {
                let empty = vec![Value::Object(Map::new()); visible];
                out.insert(key.to_owned(), Value::Array(empty));
            }
            None if visible == 0 => return Value::Null,
            None => {}
        }
        Value::Object(out)
    }
}

/// The id of `{"$oid": "..."}` (or a plain string) in JSON text.
fn read_id(text: &str) -> Option<ObjectId> {
    let hex = |s: &str| {
        s.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .and_then(|h| ObjectId::parse(h).ok())
    };
    match text.as_bytes().first()? {
        b'"' => hex(text),
        b'{' => {
            let mut members = scan::members(text);
            let (k, v) = members.next()?;
            (k == "$oid" && members.next().is_none())
                .then(|| hex(&text[v]))
                .flatten()
        }
        _ => None,
    }
}

/// One label of [`LabelRows`].
#[derive(Clone, Copy)]
pub struct Row<'r> {
    of: &'r LabelRows<'r>,
    data: &'r RowData,
}

impl<'r> Row<'r> {
    /// The label's id.
    pub fn id(&self) -> Option<ObjectId> {
        self.data.id
    }

    fn key_is(&self, e: &Entry, key: &str) -> bool {
        match &e.key {
            Key::Span(s) => &self.of.text[s.clone()] == key,
            Key::Owned(o) => &**o == key,
        }
    }
}

impl expr::Doc for Row<'_> {
    fn get(&self, key: &str) -> Option<Val<'_>> {
        // The last occurrence wins, as in a parsed object.
        let e = self.of.entries[self.data.entries.clone()]
            .iter()
            .rev()
            .find(|e| self.key_is(e, key))?;
        let raw = &self.of.text[e.value.clone()];
        Some(scalar(raw).unwrap_or_else(|| {
            Val::from_json(
                e.parsed
                    .get_or_init(|| serde_json::from_str(raw).unwrap_or_default()),
            )
        }))
    }
}

/// A scalar read in place as [`Val::from_json`] reads it parsed; `None` for objects, lists
/// and strings with escapes.
fn scalar(raw: &str) -> Option<Val<'_>> {
    Some(match raw.as_bytes().first()? {
        b'"' => {
            let inner = raw.get(1..raw.len().checked_sub(1)?)?;
            if inner.contains('\\') {
                return None;
            }
            Val::Str(Cow::Borrowed(inner))
        }
        b't' => Val::Bool(true),
        b'f' => Val::Bool(false),
        b'n' => Val::Null,
        b'-' | b'0'..=b'9' => Val::Num(number(raw)?),
        _ => return None,
    })
}

/// A JSON number as serde_json reads it: integers as 64-bit integers first.
fn number(raw: &str) -> Option<f64> {
    if !raw.contains(['.', 'e', 'E']) {
        if let Ok(n) = raw.parse::<u64>() {
            return Some(n as f64);
        }
        if let Ok(n) = raw.parse::<i64>() {
            return Some(n as f64);
        }
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::expr::{Doc, eval, parse};
    use crate::dataset::labels::label_objects;
    use proptest::prelude::*;
    use serde_json::json;

    fn keep(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn rows_of_a_list_and_a_single_label() {
        let text = r#"{"_cls": "Detections", "detections": [
            {"_id": {"$oid": "6b02535c63110a1e76c075c0"}, "label": "car", "confidence": 0.5,
             "bounding_box": [0.1, 0.2, 0.3, 0.4], "occluded": true, "n": -3},
            null,
            {"_id": "6b02535c63110a1e76c075c1", "label": "b\"us", "label": "bus"}]}"#;
        let rows = LabelRows::read(
            Cow::Borrowed(text),
            &keep(&["label", "bounding_box", "_id", "occluded", "n"]),
        )
        .unwrap();
        let all: Vec<Row<'_>> = rows.rows().collect();
        assert_eq!(all.len(), 2, "null is not a label");
        assert_eq!(
            all[0].id(),
            Some(ObjectId::parse("6b02535c63110a1e76c075c0").unwrap())
        );
        assert_eq!(
            all[1].get("label"),
            Some(Val::Str("bus".into())),
            "last wins"
        );
        let e = parse("label == 'car' && bounding_box[2] == 0.3 && occluded && n == -3 && id == '6b02535c63110a1e76c075c0' && confidence == null").unwrap();
        assert!(eval(&e, &all[0]).truthy());
        assert_eq!(
            rows.shape(1),
            json!({"_cls": "Detections", "detections": [{}]})
        );
        let single = LabelRows::read(
            Cow::Borrowed(r#"{"_cls": "Classification", "label": "c\u0061t"}"#),
            &keep(&["label"]),
        )
        .unwrap();
        assert_eq!(single.rows().count(), 1);
        assert!(
            eval(
                &parse("label == 'cat'").unwrap(),
                &single.rows().next().unwrap()
            )
            .truthy()
        );
        assert_eq!(single.shape(0), Value::Null);
        assert_eq!(
            LabelRows::read(Cow::Borrowed("null"), &[])
                .unwrap()
                .shape(0),
            Value::Null
        );
        for other in [
            "3",
            "[]",
            r#"{"_cls": "ImageMetadata"}"#,
            r#"{"_cls": "Detections", "detections": 1}"#,
            "{}",
        ] {
            assert!(
                LabelRows::read(Cow::Borrowed(other), &[]).is_none(),
                "{other}"
            );
        }
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z\"\\\\\u{e9}]{0,5}".prop_map(Value::from),
            prop::collection::vec(any::<i8>(), 0..3).prop_map(|v| json!(v)),
            "[a-z]{1,3}".prop_map(|s| json!({"value": s})),
        ]
    }

    proptest! {
        #[test]
        fn rows_read_what_parsed_labels_hold(values in prop::collection::vec((prop::sample::select(vec!["a", "b", "id", "attributes"]), arb_scalar()), 0..6), pretty in any::<bool>()) {
            let label: Map<String, Value> = values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let value = json!({"_cls": "Detections", "detections": [label]});
            let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) }.unwrap();
            let rows = LabelRows::read(Cow::Borrowed(&text), &keep(&["a", "b", "id", "attributes"])).unwrap();
            let row = rows.rows().next().unwrap();
            let parsed = label_objects(&value)[0];
            for src in ["a", "b", "id", "a == b", "a[0]", "b.value", "c", "missing", "a + 1"] {
                let e = parse(src).unwrap();
                prop_assert_eq!(eval(&e, &row), eval(&e, parsed), "{}", src);
            }
        }
    }
}
