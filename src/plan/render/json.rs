//! The JSON plan: the stable, versioned contract of DESIGN §6 (`plan --json`, plan files).

use crate::plan::model::{FORMAT_VERSION, Plan};

/// Why a text is not a plan this version of annoform can read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or JSON of another shape.
    #[error("not a plan: {0}")]
    Json(#[from] serde_json::Error),
    /// The text has no `format_version`.
    #[error("not a plan: `format_version` is missing")]
    MissingVersion,
    /// A plan of another format version.
    #[error(
        "plan format_version {found} is not supported: this annoform reads format_version \"{FORMAT_VERSION}\""
    )]
    UnsupportedVersion {
        /// The version found, as JSON (`"2"`, `1`, …).
        found: String,
    },
}

/// The plan as pretty JSON, ending with a newline.
pub fn render(plan: &Plan) -> String {
    // The model holds only strings, integers and string-keyed maps: serializing cannot fail.
    let mut out = serde_json::to_string_pretty(plan).expect("a plan always serializes");
    out.push('\n');
    out
}

/// Reads a JSON plan, refusing any `format_version` other than [`FORMAT_VERSION`].
pub fn parse(text: &str) -> Result<Plan, ParseError> {
    // The version is checked before the shape, so a plan from a newer annoform is refused
    // for its version rather than for whatever field it renamed.
    let probe: VersionProbe = serde_json::from_str(text)?;
    match probe.format_version {
        None => return Err(ParseError::MissingVersion),
        Some(serde_json::Value::String(v)) => check_version(&v)?,
        Some(other) => {
            return Err(ParseError::UnsupportedVersion {
                found: other.to_string(),
            });
        }
    }
    Ok(serde_json::from_str(text)?)
}

/// Checks that `version` is the one format this annoform reads ([`FORMAT_VERSION`]).
pub fn check_version(version: &str) -> Result<(), ParseError> {
    if version == FORMAT_VERSION {
        Ok(())
    } else {
        Err(ParseError::UnsupportedVersion {
            found: serde_json::Value::from(version).to_string(),
        })
    }
}

/// Just the version, read whatever else the document holds.
#[derive(serde::Deserialize)]
struct VersionProbe {
    format_version: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_version_is_refused() {
        let err = parse(r#"{"runs": []}"#).unwrap_err();
        assert!(matches!(err, ParseError::MissingVersion), "{err}");
    }

    #[test]
    fn numeric_version_is_refused() {
        let err = parse(r#"{"format_version": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan format_version 1 is not supported: this annoform reads format_version \"2\""
        );
    }

    #[test]
    fn malformed_json_is_a_json_error() {
        assert!(matches!(parse("{"), Err(ParseError::Json(_))));
    }

    #[test]
    fn wrong_shape_is_a_json_error() {
        let err = parse(r#"{"format_version": "2", "runs": 3}"#).unwrap_err();
        assert!(matches!(err, ParseError::Json(_)), "{err}");
    }
}
