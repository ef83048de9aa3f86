//! The CVAT `labels` spec of a resolved schema, and the way back from the ids the server
//! assigns to (field, class, attribute).
//!
//! One CVAT label per (field, class). A class name used by several fields (or equal to a
//! scalar field's name) is written `"<class>_<field>"` in every field that uses it, as
//! FiftyOne does (`dog` in `field1` and `field2` becomes `dog_field1` and `dog_field2`), so
//! label names stay unique as CVAT requires. Scalar fields are one `tag` label named after
//! the field, with a `value` attribute. Object labels get two hidden text attributes:
//! `label_id` (our label id) and `index` (FiftyOne's `index`, which images have no other
//! place for). `occluded`/`group_id` attributes become the shape's own `occluded` flag and
//! `group`, not CVAT attributes. `read_only` has no CVAT equivalent (the merge enforces it).

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::manifest::{AttributeType, LabelType, Scalar};
use crate::schema::{ResolvedAttribute, ResolvedField, ResolvedSchema};

/// The hidden attribute carrying our label id.
pub const LABEL_ID_ATTR: &str = "label_id";
/// The hidden attribute carrying FiftyOne's `index`.
pub const INDEX_ATTR: &str = "index";
/// The hidden attribute of keypoints recording which points are NaN (`<count>:<i>,<j>`),
/// which CVAT's points shapes cannot hold.
pub const NAN_ATTR: &str = "nan_points";
/// The hidden attribute of a polylines field's closed shapes saying they are also filled
/// (CVAT's polygon is both in a polygons field; in a polylines field it is only closed).
pub const FILLED_ATTR: &str = "filled";
/// The attribute holding a scalar field's value.
pub const VALUE_ATTR: &str = "value";
/// The value standing for "not set" in select/radio attributes without a schema default.
pub const UNSET: &str = "__undefined__";

/// A CVAT attribute spec, as sent and as listed (`id` only when listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    pub input_type: String,
    #[serde(default)]
    pub mutable: bool,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub default_value: String,
}

/// A CVAT label spec, as sent and as listed (`id` only when listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    #[serde(rename = "type")]
    pub label_type: String,
    /// The colour the server shows it in (re-sent on PATCH, which would otherwise reset it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeSpec>,
}

/// The CVAT label `type` of a field's labels.
pub fn cvat_type(t: LabelType) -> &'static str {
    match t {
        LabelType::Detections => "rectangle",
        LabelType::Instances | LabelType::Segmentation => "mask",
        // A Polylines field holds open lines and closed ones (sent as polygons).
        LabelType::Polylines => "any",
        LabelType::Polygons => "polygon",
        LabelType::Keypoints => "points",
        LabelType::Classification | LabelType::Classifications | LabelType::Scalar => "tag",
    }
}

/// Whether labels of this type are objects with an id and an index.
fn has_ids(t: LabelType) -> bool {
    t != LabelType::Scalar
}

/// Whether labels of this type have FiftyOne's `index`: its trackable types (detections,
/// polylines, keypoints and their variants), the ones that form CVAT tracks in a video.
pub(super) fn has_index(t: LabelType) -> bool {
    matches!(
        t,
        LabelType::Detections
            | LabelType::Instances
            | LabelType::Polylines
            | LabelType::Polygons
            | LabelType::Keypoints
    )
}

/// The CVAT string of a scalar: `true`/`false` and decimal numbers, as the server wants them.
pub fn scalar_string(s: &Scalar) -> String {
    s.to_string()
}

/// (field, class, CVAT label name) for every label of the schema, in schema order. Scalar
/// fields have the class `""`.
pub fn label_names(schema: &ResolvedSchema) -> Vec<(String, String, String)> {
    let pairs: Vec<(String, String)> = schema
        .fields
        .iter()
        .flat_map(|(name, f)| classes_of(f).into_iter().map(|c| (name.to_string(), c)))
        .collect();
    let mut seen: HashMap<String, HashSet<&str>> = HashMap::new();
    for (field, class) in &pairs {
        seen.entry(plain_name(field, class))
            .or_default()
            .insert(field);
    }
    pairs
        .iter()
        .map(|(field, class)| {
            let plain = plain_name(field, class);
            let shared = seen.get(&plain).is_some_and(|fields| fields.len() > 1);
            let name = if shared {
                format!("{plain}_{field}")
            } else {
                plain
            };
            (field.clone(), class.clone(), name)
        })
        .collect()
}

/// A field's CVAT classes (one `""` for a scalar field).
fn classes_of(f: &ResolvedField) -> Vec<String> {
    if f.label_type == LabelType::Scalar {
        vec![String::new()]
    } else {
        f.classes.clone()
    }
}

/// The label name before disambiguation.
fn plain_name(field: &str, class: &str) -> String {
    if class.is_empty() {
        field.to_string()
    } else {
        class.to_string()
    }
}

/// The attributes of a (field, class): the field's, then the class's own.
pub fn attributes_of<'a>(
    field: &'a ResolvedField,
    class: &str,
) -> impl Iterator<Item = (&'a String, &'a ResolvedAttribute)> {
    let own = field.class_attributes.get(class);
    field.attributes.iter().chain(own.into_iter().flatten())
}

/// The CVAT `labels` spec of a schema.
pub fn label_specs(schema: &ResolvedSchema) -> Vec<LabelSpec> {
    label_names(schema)
        .into_iter()
        .filter_map(|(field, class, name)| {
            let f = schema.fields.get(&field)?;
            Some(LabelSpec {
                id: None,
                name,
                label_type: cvat_type(f.label_type).to_string(),
                color: None,
                attributes: attribute_specs(f, &class),
            })
        })
        .collect()
}

/// The CVAT attributes of one (field, class).
fn attribute_specs(f: &ResolvedField, class: &str) -> Vec<AttributeSpec> {
    if f.label_type == LabelType::Scalar {
        return vec![value_spec(f)];
    }
    let mut out: Vec<AttributeSpec> = attributes_of(f, class)
        .filter_map(|(name, a)| attribute_spec(name, a))
        .collect();
    if has_ids(f.label_type) {
        out.push(hidden_text(LABEL_ID_ATTR));
    }
    if has_index(f.label_type) {
        out.push(hidden_text(INDEX_ATTR));
    }
    if f.label_type == LabelType::Keypoints {
        out.push(hidden_text(NAN_ATTR));
    }
    if f.label_type == LabelType::Polylines && !out.iter().any(|a| a.name == FILLED_ATTR) {
        out.push(hidden_text(FILLED_ATTR));
    }
    out
}

/// A mutable text attribute with an empty default.
fn hidden_text(name: &str) -> AttributeSpec {
    AttributeSpec {
        id: None,
        name: name.to_string(),
        input_type: "text".into(),
        mutable: true,
        values: vec![String::new()],
        default_value: String::new(),
    }
}

/// A scalar field's `value` attribute: a select of its classes, else free text.
fn value_spec(f: &ResolvedField) -> AttributeSpec {
    if f.classes.is_empty() {
        return hidden_text(VALUE_ATTR);
    }
    let mut values = f.classes.clone();
    values.push(UNSET.into());
    AttributeSpec {
        id: None,
        name: VALUE_ATTR.into(),
        input_type: "select".into(),
        mutable: true,
        values,
        default_value: UNSET.into(),
    }
}

/// The CVAT spec of one schema attribute; `None` for occluded/group id (shape fields).
fn attribute_spec(name: &str, a: &ResolvedAttribute) -> Option<AttributeSpec> {
    let default = a.default.as_ref().map(scalar_string);
    let (input_type, values, default_value) = match a.attr_type {
        AttributeType::Occluded | AttributeType::GroupId => return None,
        AttributeType::Text => ("text", vec![String::new()], default.unwrap_or_default()),
        AttributeType::Checkbox => (
            "checkbox",
            vec![default.clone().unwrap_or_else(|| "false".into())],
            default.unwrap_or_else(|| "false".into()),
        ),
        AttributeType::Select | AttributeType::Radio => {
            let mut values: Vec<String> = a.values.iter().map(scalar_string).collect();
            // Without a schema default, an explicit "not set" value keeps CVAT from
            // filling in the first real value.
            let default_value = default.unwrap_or_else(|| {
                values.push(UNSET.into());
                UNSET.into()
            });
            let kind = if a.attr_type == AttributeType::Select {
                "select"
            } else {
                "radio"
            };
            (kind, values, default_value)
        }
    };
    Some(AttributeSpec {
        id: None,
        name: name.to_string(),
        input_type: input_type.into(),
        mutable: a.mutable,
        values,
        default_value,
    })
}

/// One CVAT label mapped back to the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedLabel {
    pub field: String,
    /// The class (`""` for a scalar field).
    pub class: String,
    /// CVAT label id.
    pub id: i64,
    /// Attribute spec id → attribute name.
    pub attributes: HashMap<i64, String>,
    /// Attribute name → spec id.
    pub spec_ids: HashMap<String, i64>,
    /// Attribute name → the default the server fills in.
    pub defaults: HashMap<String, String>,
    /// Spec ids of the attributes that are the same on every frame of a track (video):
    /// CVAT takes them on the track, the others on each tracked shape.
    pub immutable: HashSet<i64>,
}

/// The server's labels mapped to the schema, both ways.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelMap {
    by_id: HashMap<i64, MappedLabel>,
    by_class: IndexMap<(String, String), i64>,
    /// Names of the server's labels that no field of the schema has (added in CVAT).
    others: HashMap<i64, String>,
}

/// Server labels that do not match the schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("CVAT labels: {0}")]
pub struct LabelMapError(pub String);

impl LabelMap {
    /// Maps the labels the server lists (with ids) to the schema by name; labels the schema
    /// does not know are ignored, schema labels the server lacks are an error.
    pub fn new(schema: &ResolvedSchema, server: &[LabelSpec]) -> Result<LabelMap, LabelMapError> {
        let by_name: HashMap<&str, &LabelSpec> =
            server.iter().map(|l| (l.name.as_str(), l)).collect();
        let names = label_names(schema);
        let mut unique = HashSet::new();
        if let Some((_, _, dup)) = names.iter().find(|(_, _, n)| !unique.insert(n.as_str())) {
            // Only when a class is literally called `<class>_<field>` of another field.
            return Err(LabelMapError(format!("two labels would be called `{dup}`")));
        }
        let mut map = LabelMap::default();
        for (field, class, name) in names {
            let spec = by_name
                .get(name.as_str())
                .ok_or_else(|| LabelMapError(format!("the server has no label `{name}`")))?;
            let id = spec
                .id
                .ok_or_else(|| LabelMapError(format!("label `{name}` has no id")))?;
            let mut mapped = MappedLabel {
                field: field.clone(),
                class: class.clone(),
                id,
                attributes: HashMap::new(),
                spec_ids: HashMap::new(),
                defaults: HashMap::new(),
                immutable: HashSet::new(),
            };
            for a in &spec.attributes {
                let Some(aid) = a.id else { continue };
                if !a.mutable {
                    mapped.immutable.insert(aid);
                }
                mapped.attributes.insert(aid, a.name.clone());
                mapped.spec_ids.insert(a.name.clone(), aid);
                mapped
                    .defaults
                    .insert(a.name.clone(), a.default_value.clone());
            }
            map.by_class.insert((field, class), id);
            map.by_id.insert(id, mapped);
        }
        for l in server {
            if let Some(id) = l.id.filter(|id| !map.by_id.contains_key(id)) {
                map.others.insert(id, l.name.clone());
            }
        }
        Ok(map)
    }

    /// The label with this CVAT id.
    pub fn label(&self, id: i64) -> Option<&MappedLabel> {
        self.by_id.get(&id)
    }

    /// The name of a server label that no field of the schema has.
    pub fn other_name(&self, id: i64) -> Option<&str> {
        self.others.get(&id).map(String::as_str)
    }

    /// The CVAT label of (field, class).
    pub fn label_of(&self, field: &str, class: &str) -> Option<&MappedLabel> {
        let id = self.by_class.get(&(field.to_string(), class.to_string()))?;
        self.by_id.get(id)
    }

    /// (field, class, attribute name) of a CVAT label id and attribute spec id.
    pub fn attribute(&self, label_id: i64, spec_id: i64) -> Option<(&str, &str, &str)> {
        let l = self.by_id.get(&label_id)?;
        let a = l.attributes.get(&spec_id)?;
        Some((&l.field, &l.class, a))
    }
}

/// The classes of an existing project and their visible attributes, as a run would annotate
/// them (annoform's hidden attributes left out; CVAT's `number` inputs are text).
pub fn project_classes(labels: &[LabelSpec]) -> Vec<(String, IndexMap<String, ResolvedAttribute>)> {
    const HIDDEN: [&str; 4] = [LABEL_ID_ATTR, INDEX_ATTR, NAN_ATTR, FILLED_ATTR];
    labels
        .iter()
        .map(|l| {
            let attrs = l
                .attributes
                .iter()
                .filter(|a| !HIDDEN.contains(&a.name.as_str()))
                .map(|a| {
                    let attr_type = match a.input_type.as_str() {
                        "select" => AttributeType::Select,
                        "radio" => AttributeType::Radio,
                        "checkbox" => AttributeType::Checkbox,
                        _ => AttributeType::Text,
                    };
                    let listed = matches!(attr_type, AttributeType::Select | AttributeType::Radio);
                    let values: Vec<Scalar> = if listed {
                        a.values
                            .iter()
                            .filter(|v| *v != UNSET)
                            .map(|v| Scalar::Str(v.clone()))
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let default =
                        (listed && !a.default_value.is_empty() && a.default_value != UNSET)
                            .then(|| Scalar::Str(a.default_value.clone()));
                    (
                        a.name.clone(),
                        ResolvedAttribute {
                            attr_type,
                            values,
                            default,
                            read_only: false,
                            mutable: a.mutable,
                        },
                    )
                })
                .collect();
            (l.name.clone(), attrs)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn project_classes_leave_out_hidden_attributes() {
        let spec = |name: &str, input_type: &str, values: &[&str], default: &str| AttributeSpec {
            id: Some(1),
            name: name.into(),
            input_type: input_type.into(),
            mutable: false,
            values: values.iter().map(|v| v.to_string()).collect(),
            default_value: default.into(),
        };
        let labels = vec![LabelSpec {
            id: Some(3),
            name: "car".into(),
            label_type: "rectangle".into(),
            color: None,
            attributes: vec![
                spec(LABEL_ID_ATTR, "text", &[""], ""),
                spec("kind", "select", &["sedan", "suv", UNSET], "sedan"),
                spec("make", "text", &[""], ""),
                spec("speed", "number", &["0", "100", "1"], "0"),
            ],
        }];
        let classes = project_classes(&labels);
        assert_eq!(classes.len(), 1);
        let (name, attrs) = &classes[0];
        assert_eq!(name, "car");
        let names: Vec<&str> = attrs.keys().map(String::as_str).collect();
        assert_eq!(names, ["kind", "make", "speed"]);
        assert_eq!(attrs["kind"].attr_type, AttributeType::Select);
        assert_eq!(
            attrs["kind"].values,
            vec![Scalar::Str("sedan".into()), Scalar::Str("suv".into())]
        );
        assert_eq!(attrs["kind"].default, Some(Scalar::Str("sedan".into())));
        assert!(!attrs["kind"].mutable);
        assert_eq!(attrs["speed"].attr_type, AttributeType::Text);
        assert!(attrs["speed"].values.is_empty());
    }

    pub(crate) fn attr(
        t: AttributeType,
        values: Vec<Scalar>,
        default: Option<Scalar>,
    ) -> ResolvedAttribute {
        ResolvedAttribute {
            attr_type: t,
            values,
            default,
            read_only: false,
            mutable: true,
        }
    }

    pub(crate) fn field(t: LabelType, classes: &[&str]) -> ResolvedField {
        ResolvedField::new(t, classes.iter().map(|c| c.to_string()).collect())
    }

    /// Spec ids as a server would assign them: labels from 100, attributes from 1000.
    pub(crate) fn serve(specs: &[LabelSpec]) -> Vec<LabelSpec> {
        let mut next_attr = 1000;
        specs
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut l = l.clone();
                l.id = Some(100 + i as i64);
                for a in &mut l.attributes {
                    a.id = Some(next_attr);
                    next_attr += 1;
                }
                l
            })
            .collect()
    }

    #[test]
    fn shared_class_names_get_the_field() {
        let mut s = ResolvedSchema::default();
        s.fields.insert(
            "gt".into(),
            field(LabelType::Detections, &["car", "person"]),
        );
        s.fields
            .insert("pred".into(), field(LabelType::Polygons, &["car"]));
        s.fields
            .insert("person".into(), field(LabelType::Scalar, &[]));
        let names: Vec<String> = label_names(&s).into_iter().map(|(_, _, n)| n).collect();
        assert_eq!(
            names,
            vec!["car_gt", "person_gt", "car_pred", "person_person"]
        );
        let specs = label_specs(&s);
        let unique: HashSet<&str> = specs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(unique.len(), specs.len());
    }

    #[test]
    fn specs_follow_cvat_conventions() {
        let mut f = field(LabelType::Detections, &["car"]);
        f.attributes.insert(
            "make".into(),
            attr(
                AttributeType::Select,
                vec![Scalar::Str("audi".into()), Scalar::Int(3)],
                None,
            ),
        );
        f.attributes.insert(
            "moving".into(),
            attr(AttributeType::Checkbox, vec![], Some(Scalar::Bool(true))),
        );
        f.attributes
            .insert("occ".into(), attr(AttributeType::Occluded, vec![], None));
        f.class_attributes.insert(
            "car".into(),
            [(
                "note".to_string(),
                attr(AttributeType::Text, vec![], Some(Scalar::Str("n/a".into()))),
            )]
            .into_iter()
            .collect(),
        );
        let mut s = ResolvedSchema::default();
        s.fields.insert("gt".into(), f);
        let json = serde_json::to_value(label_specs(&s)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"name": "car", "type": "rectangle", "attributes": [
                {"name": "make", "input_type": "select", "mutable": true, "values": ["audi", "3", UNSET], "default_value": UNSET},
                {"name": "moving", "input_type": "checkbox", "mutable": true, "values": ["true"], "default_value": "true"},
                {"name": "note", "input_type": "text", "mutable": true, "values": [""], "default_value": "n/a"},
                {"name": "label_id", "input_type": "text", "mutable": true, "values": [""], "default_value": ""},
                {"name": "index", "input_type": "text", "mutable": true, "values": [""], "default_value": ""}
            ]}])
        );
    }

    #[test]
    fn scalars_are_tags_with_a_value() {
        let mut s = ResolvedSchema::default();
        s.fields
            .insert("free".into(), field(LabelType::Scalar, &[]));
        s.fields
            .insert("pick".into(), field(LabelType::Scalar, &["a", "b"]));
        let specs = label_specs(&s);
        assert_eq!(specs[0].label_type, "tag");
        assert_eq!(specs[0].attributes[0].input_type, "text");
        assert_eq!(specs[1].attributes[0].values, vec!["a", "b", UNSET]);
    }

    #[test]
    fn reverse_lookup_by_server_ids() {
        let mut s = ResolvedSchema::default();
        let mut f = field(LabelType::Detections, &["car", "bus"]);
        f.attributes
            .insert("make".into(), attr(AttributeType::Text, vec![], None));
        s.fields.insert("gt".into(), f);
        let served = serve(&label_specs(&s));
        let map = LabelMap::new(&s, &served).unwrap();
        assert_eq!(map.attribute(101, 1003), Some(("gt", "bus", "make")));
        assert_eq!(map.label_of("gt", "car").map(|l| l.id), Some(100));
        assert_eq!(map.attribute(101, 1000), None);
        assert!(LabelMap::new(&s, &served[..1]).is_err());
        s.fields.insert(
            "other".into(),
            field(LabelType::Detections, &["car", "car_gt"]),
        );
        let served = serve(&label_specs(&s));
        assert!(LabelMap::new(&s, &served).is_err());
    }
}
