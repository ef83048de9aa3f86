//! The labeling config (XML) of a run's project, generated from its resolved schema: one
//! image, one control per field named after the field, classes as `Label`/`Choice` values.

use crate::backend::TaskSpec;
use crate::dataset::FieldPath;
use crate::manifest::LabelType;
use crate::schema::{ResolvedField, ResolvedSchema};
use indexmap::IndexMap;

/// The name of the image object every control points at (`toName`).
pub const IMAGE: &str = "image";

/// A schema Label Studio cannot show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

/// Escapes text for an XML attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

/// The classes a field's control offers (segmentations: the mask targets' names).
fn classes(f: &ResolvedField) -> Vec<String> {
    if f.label_type == LabelType::Segmentation {
        if let Some(t) = f.mask_targets.as_ref().filter(|t| !t.is_empty()) {
            return t.values().cloned().collect();
        }
    }
    f.classes.clone()
}

/// The labeling config for `schema`.
pub fn labeling_config(schema: &ResolvedSchema) -> Result<String, ConfigError> {
    let mut xml = format!("<View>\n  <Image name=\"{IMAGE}\" value=\"${IMAGE}\"/>\n");
    for (name, f) in &schema.fields {
        let err = |message: &str| ConfigError {
            field: name.to_string(),
            message: message.to_string(),
        };
        if name == IMAGE {
            return Err(err(
                "the name `image` is taken by the image itself in Label Studio",
            ));
        }
        let n = escape(name.as_str());
        let (tag, item, extra) = match f.label_type {
            LabelType::Scalar => {
                xml.push_str(&format!("  <Number name=\"{n}\" toName=\"{IMAGE}\"/>\n"));
                continue;
            }
            LabelType::Classification => ("Choices", "Choice", " choice=\"single-radio\""),
            LabelType::Classifications => ("Choices", "Choice", " choice=\"multiple\""),
            LabelType::Detections => ("RectangleLabels", "Label", ""),
            LabelType::Instances | LabelType::Segmentation => ("BrushLabels", "Label", ""),
            LabelType::Polylines | LabelType::Polygons => ("PolygonLabels", "Label", ""),
            LabelType::Keypoints => ("KeyPointLabels", "Label", ""),
        };
        let classes = classes(f);
        if classes.is_empty() {
            return Err(err(
                "Label Studio needs at least one class for this control",
            ));
        }
        xml.push_str(&format!(
            "  <{tag} name=\"{n}\" toName=\"{IMAGE}\"{extra}>\n"
        ));
        for c in classes {
            xml.push_str(&format!("    <{item} value=\"{}\"/>\n", escape(&c)));
        }
        xml.push_str(&format!("  </{tag}>\n"));
    }
    xml.push_str("</View>");
    Ok(xml)
}

/// Field types read back from a labeling config we generated; brushes and polygons are
/// ambiguous in XML, so the labels about to be uploaded decide (instance masks are
/// `Detection`s; a polyline that is not closed is a polyline).
pub fn fields_of(xml: &str, task: &TaskSpec) -> IndexMap<FieldPath, ResolvedField> {
    let tag =
        regex::Regex::new(r#"<(\w+) name="([^"]*)" toName="image"([^>]*)>"#).expect("static regex");
    let labels_of = |field: &str| {
        task.samples
            .iter()
            .flat_map(|s| s.labels.get(field).into_iter().flatten())
            .collect::<Vec<_>>()
    };
    let mut out = IndexMap::new();
    for c in tag.captures_iter(xml) {
        let name = unescape(&c[2]);
        let labels = labels_of(&name);
        let t = match &c[1] {
            "Number" => LabelType::Scalar,
            "Choices" if c[3].contains("multiple") => LabelType::Classifications,
            "Choices" => LabelType::Classification,
            "RectangleLabels" => LabelType::Detections,
            "KeyPointLabels" => LabelType::Keypoints,
            "BrushLabels"
                if labels
                    .iter()
                    .any(|l| l.get("_cls").and_then(|c| c.as_str()) == Some("Detection")) =>
            {
                LabelType::Instances
            }
            "BrushLabels" => LabelType::Segmentation,
            "PolygonLabels"
                if labels
                    .iter()
                    .any(|l| l.get("closed").and_then(|c| c.as_bool()) == Some(false)) =>
            {
                LabelType::Polylines
            }
            "PolygonLabels" => LabelType::Polygons,
            _ => continue,
        };
        out.insert(
            FieldPath::parse(&name),
            ResolvedField {
                label_type: t,
                existing: true,
                classes: Vec::new(),
                attributes: IndexMap::new(),
                class_attributes: IndexMap::new(),
                mask_targets: None,
                restrictions: crate::schema::Restrictions::default(),
            },
        );
    }
    out
}

/// Inverse of `escape`.
fn unescape(s: &str) -> String {
    s.replace("&#10;", "\n")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(t: LabelType, classes: &[&str]) -> ResolvedField {
        ResolvedField::new(t, classes.iter().map(|c| c.to_string()).collect())
    }

    #[test]
    fn matches_the_recipe_config() {
        // The recipe's full_config.xml, which Label Studio 1.23.2 accepted, modulo whitespace
        // and the `single-radio` choice style the recipe's table asks for.
        let mut s = ResolvedSchema::default();
        s.fields.insert(
            "detections".into(),
            field(LabelType::Detections, &["cat", "dog"]),
        );
        s.fields.insert(
            "weather".into(),
            field(LabelType::Classification, &["sunny", "rainy"]),
        );
        s.fields.insert(
            "tags".into(),
            field(LabelType::Classifications, &["indoor", "outdoor", "blurry"]),
        );
        s.fields.insert(
            "polygons".into(),
            field(LabelType::Polygons, &["road", "building"]),
        );
        s.fields.insert(
            "keypoints".into(),
            field(LabelType::Keypoints, &["nose", "eye"]),
        );
        s.fields.insert(
            "segmentation".into(),
            field(LabelType::Segmentation, &["sky", "ground"]),
        );
        let squash = |x: &str| {
            x.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("> <", "><")
        };
        let recipe = r#"<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="detections" toName="image">
    <Label value="cat"/><Label value="dog"/>
  </RectangleLabels>
  <Choices name="weather" toName="image" choice="single-radio">
    <Choice value="sunny"/><Choice value="rainy"/>
  </Choices>
  <Choices name="tags" toName="image" choice="multiple">
    <Choice value="indoor"/><Choice value="outdoor"/><Choice value="blurry"/>
  </Choices>
  <PolygonLabels name="polygons" toName="image">
    <Label value="road"/><Label value="building"/>
  </PolygonLabels>
  <KeyPointLabels name="keypoints" toName="image">
    <Label value="nose"/><Label value="eye"/>
  </KeyPointLabels>
  <BrushLabels name="segmentation" toName="image">
    <Label value="sky"/><Label value="ground"/>
  </BrushLabels>
</View>"#;
        assert_eq!(squash(&labeling_config(&s).unwrap()), squash(recipe));
    }

    #[test]
    fn escapes_and_scalars_and_mask_targets() {
        let mut s = ResolvedSchema::default();
        s.fields.insert(
            "gt".into(),
            field(LabelType::Detections, &["a&b", "\"q\" <x>"]),
        );
        s.fields
            .insert("score".into(), field(LabelType::Scalar, &[]));
        let mut seg = field(LabelType::Segmentation, &[]);
        seg.mask_targets = Some([("1".to_string(), "sky".to_string())].into_iter().collect());
        s.fields.insert("seg".into(), seg);
        let xml = labeling_config(&s).unwrap();
        assert!(xml.contains(r#"<Label value="a&amp;b"/>"#), "{xml}");
        assert!(
            xml.contains(r#"<Label value="&quot;q&quot; &lt;x&gt;"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<Number name="score" toName="image"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<BrushLabels name="seg" toName="image">"#)
                && xml.contains(r#"<Label value="sky"/>"#)
        );
        let mut bad = ResolvedSchema::default();
        bad.fields
            .insert("image".into(), field(LabelType::Detections, &["a"]));
        assert!(labeling_config(&bad).is_err());
        let mut empty = ResolvedSchema::default();
        empty
            .fields
            .insert("d".into(), field(LabelType::Detections, &[]));
        assert!(labeling_config(&empty).is_err());
    }
}
