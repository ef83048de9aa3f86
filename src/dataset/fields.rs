//! Field declarations in `metadata.json` (`sample_fields` / `frame_fields`), shaped exactly as
//! FiftyOne 1.22.1 writes them, for both the current (list of docs) and legacy (map of type
//! strings) formats. FiftyOne refuses to load a sample field that is not declared.

use serde_json::{Value, json};

use super::ejson;

const F: &str = "fiftyone.core.fields.";
const L: &str = "fiftyone.core.labels.";

/// The type of a field annoform can declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// An embedded label of this class (`Detections`, `Classification`, ...).
    Label(String),
    /// `IntField`.
    Int,
    /// `FloatField`.
    Float,
    /// `StringField`.
    Str,
    /// `BooleanField`.
    Bool,
}

impl FieldType {
    /// The type a sample value implies, when it is one annoform can declare.
    pub fn infer(v: &Value) -> Option<FieldType> {
        match v {
            Value::Bool(_) => Some(FieldType::Bool),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(FieldType::Int),
            Value::Number(_) => Some(FieldType::Float),
            Value::String(_) => Some(FieldType::Str),
            Value::Object(o) => {
                if o.contains_key("$numberDouble") {
                    return Some(FieldType::Float);
                }
                let cls = o.get("_cls")?.as_str()?;
                (!cls.ends_with("Metadata")).then(|| FieldType::Label(cls.to_owned()))
            }
            _ => None,
        }
    }

    /// The `fiftyone.core.fields` class name.
    fn ftype(&self) -> &'static str {
        match self {
            FieldType::Int => "IntField",
            FieldType::Float => "FloatField",
            FieldType::Str => "StringField",
            FieldType::Bool => "BooleanField",
            FieldType::Label(_) => "EmbeddedDocumentField",
        }
    }

    /// The legacy `sample_fields` spelling, e.g.
    /// `fiftyone.core.fields.EmbeddedDocumentField(fiftyone.core.labels.Detections)`.
    pub fn legacy_string(&self) -> String {
        match self {
            FieldType::Label(cls) => format!("{F}{}({L}{cls})", self.ftype()),
            _ => format!("{F}{}", self.ftype()),
        }
    }

    /// The current-format field doc.
    pub fn field_doc(&self, name: &str) -> Value {
        let now = ejson::date_now();
        match self {
            FieldType::Label(cls) => doc(
                name,
                self.ftype(),
                Some(&format!("{L}{cls}")),
                None,
                label_subfields(cls, &now),
                name,
                now.clone(),
            ),
            _ => doc(name, self.ftype(), None, None, vec![], name, now),
        }
    }
}

fn doc(
    name: &str,
    ftype: &str,
    embedded: Option<&str>,
    subfield: Option<&str>,
    fields: Vec<Value>,
    db_field: &str,
    created_at: Value,
) -> Value {
    json!({
        "name": name,
        "ftype": format!("{F}{ftype}"),
        "embedded_doc_type": embedded,
        "subfield": subfield.map(|s| format!("{F}{s}")),
        "fields": fields,
        "db_field": db_field,
        "description": null,
        "info": null,
        "read_only": false,
        "created_at": created_at,
    })
}

/// The subfield docs of a label class, as FiftyOne declares them (custom attributes are not
/// declared: FiftyOne keeps them as dynamic attributes).
fn label_subfields(cls: &str, created_at: &Value) -> Vec<Value> {
    let c = || created_at.clone();
    let plain = |name: &str, ftype: &str| doc(name, ftype, None, None, vec![], name, c());
    let sub = |name: &str, ftype: &str, subfield: &str| {
        doc(name, ftype, None, Some(subfield), vec![], name, c())
    };
    let id = doc("id", "ObjectIdField", None, None, vec![], "_id", c());
    let tags = sub("tags", "ListField", "StringField");
    let attributes = doc(
        "attributes",
        "DictField",
        Some(&format!("{L}Attribute")),
        Some("EmbeddedDocumentField"),
        vec![],
        "attributes",
        c(),
    );
    match cls {
        "Classification" => vec![
            id,
            tags,
            plain("label", "StringField"),
            plain("confidence", "FloatField"),
            plain("logits", "VectorField"),
        ],
        "Detection" => vec![
            id,
            tags,
            attributes,
            plain("label", "StringField"),
            sub("bounding_box", "ListField", "FloatField"),
            plain("mask", "ArrayField"),
            plain("mask_path", "StringField"),
            plain("confidence", "FloatField"),
            plain("index", "IntField"),
        ],
        "Polyline" => vec![
            id,
            tags,
            attributes,
            plain("label", "StringField"),
            plain("points", "PolylinePointsField"),
            plain("confidence", "FloatField"),
            plain("index", "IntField"),
            plain("closed", "BooleanField"),
            plain("filled", "BooleanField"),
        ],
        "Keypoint" => vec![
            id,
            tags,
            attributes,
            plain("label", "StringField"),
            plain("points", "KeypointsField"),
            sub("confidence", "ListField", "FloatField"),
            plain("index", "IntField"),
        ],
        "Segmentation" => vec![
            id,
            tags,
            plain("mask", "ArrayField"),
            plain("mask_path", "StringField"),
        ],
        _ => match (
            super::labels::label_list_key(cls),
            super::labels::label_item_class(cls),
        ) {
            (Some(key), Some(item)) => {
                // Items of a list are declared once, without creation dates.
                let list = doc(
                    key,
                    "ListField",
                    Some(&format!("{L}{item}")),
                    Some("EmbeddedDocumentField"),
                    label_subfields(item, &Value::Null),
                    key,
                    c(),
                );
                let mut out = vec![list];
                if cls == "Classifications" {
                    out.push(plain("logits", "VectorField"));
                }
                out
            }
            _ => vec![],
        },
    }
}

/// The label class declared by a current-format field doc or a legacy type string:
/// `fiftyone.core.labels.Detections` → `Detections`.
pub fn declared_label_class(decl: &Value) -> Option<String> {
    let edt = match decl {
        Value::Object(o) => {
            if !o.get("ftype")?.as_str()?.ends_with("EmbeddedDocumentField") {
                return None;
            }
            o.get("embedded_doc_type")?.as_str()?.to_owned()
        }
        Value::String(s) => s
            .strip_prefix(&format!("{F}EmbeddedDocumentField("))?
            .strip_suffix(')')?
            .to_owned(),
        _ => return None,
    };
    edt.strip_prefix(L).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_fields() -> Vec<Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fiftyone-1.22.1/image-all-label-types/metadata.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["sample_fields"].as_array().unwrap().clone()
    }

    /// A field doc with every `created_at` date replaced by a marker (dates differ).
    fn undated(v: &Value) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| {
                        let v = if k == "created_at" && !v.is_null() {
                            json!("DATE")
                        } else {
                            undated(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(undated).collect()),
            _ => v.clone(),
        }
    }

    #[test]
    fn generated_docs_match_fiftyones() {
        let fixture = fixture_fields();
        let cases = [
            ("cls", "Classification"),
            ("clss", "Classifications"),
            ("ground_truth", "Detections"),
            ("polylines", "Polylines"),
            ("kps", "Keypoints"),
            ("seg", "Segmentation"),
        ];
        for (name, cls) in cases {
            let want = fixture.iter().find(|f| f["name"] == name).unwrap();
            let got = FieldType::Label(cls.into()).field_doc(name);
            assert_eq!(undated(&got), undated(want), "{cls}");
        }
        for (name, t) in [
            ("n_int", FieldType::Int),
            ("n_float", FieldType::Float),
            ("n_str", FieldType::Str),
            ("n_bool", FieldType::Bool),
        ] {
            let want = fixture.iter().find(|f| f["name"] == name).unwrap();
            assert_eq!(undated(&t.field_doc(name)), undated(want), "{name}");
        }
    }

    #[test]
    fn declared_classes() {
        let fixture = fixture_fields();
        let gt = fixture
            .iter()
            .find(|f| f["name"] == "ground_truth")
            .unwrap();
        assert_eq!(declared_label_class(gt).as_deref(), Some("Detections"));
        let md = fixture.iter().find(|f| f["name"] == "metadata").unwrap();
        assert_eq!(declared_label_class(md), None);
        let legacy =
            json!("fiftyone.core.fields.EmbeddedDocumentField(fiftyone.core.labels.Keypoints)");
        assert_eq!(declared_label_class(&legacy).as_deref(), Some("Keypoints"));
        assert_eq!(FieldType::Label("Keypoints".into()).legacy_string(), legacy);
        assert_eq!(
            FieldType::Int.legacy_string(),
            "fiftyone.core.fields.IntField"
        );
    }

    #[test]
    fn inference() {
        assert_eq!(FieldType::infer(&json!(1)), Some(FieldType::Int));
        assert_eq!(FieldType::infer(&json!(1.5)), Some(FieldType::Float));
        assert_eq!(
            FieldType::infer(&json!({"$numberDouble": "NaN"})),
            Some(FieldType::Float)
        );
        assert_eq!(FieldType::infer(&json!("x")), Some(FieldType::Str));
        assert_eq!(FieldType::infer(&json!(true)), Some(FieldType::Bool));
        assert_eq!(
            FieldType::infer(&json!({"_cls": "Detections"})),
            Some(FieldType::Label("Detections".into()))
        );
        assert_eq!(FieldType::infer(&json!({"_cls": "ImageMetadata"})), None);
        assert_eq!(FieldType::infer(&json!([1])), None);
    }
}
