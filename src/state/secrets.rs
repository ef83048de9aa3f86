//! The rule that records never hold secrets.

use crate::backend::capabilities::is_secret_setting;
use crate::state::error::{Result, StateError};
use crate::state::record::RunRecord;
use serde_json::Value;

/// Marker of an unresolved or leaked `${env:NAME}` reference.
const ENV_REF: &str = "${env:";

/// Refuses a record whose backend config names a secret setting or that carries `${env:`.
///
/// A resolved secret is indistinguishable from any other string, so the guard is by key
/// name (`password`, `api_key`, `*token`, ...) plus the interpolation marker anywhere.
pub fn assert_no_secrets(record: &RunRecord) -> Result<()> {
    let fail = |location: String| StateError::Secret {
        dataset: record.dataset.clone(),
        key: record.key.clone(),
        location,
    };
    for (name, value) in &record.backend_config {
        let path = format!("backend_config.{name}");
        if let Some(location) = secret_in(&path, name, value) {
            return Err(fail(location));
        }
    }
    let whole = serde_json::to_value(record).map_err(|e| fail(format!("<unserialisable: {e}>")))?;
    match env_ref_in("", &whole) {
        Some(location) => Err(fail(location)),
        None => Ok(()),
    }
}

/// The path of a secret-named setting at or below `value`.
fn secret_in(path: &str, name: &str, value: &Value) -> Option<String> {
    if is_secret_setting(&name.to_ascii_lowercase()) {
        return Some(path.to_string());
    }
    match value {
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| secret_in(&format!("{path}.{k}"), k, v)),
        _ => None,
    }
}

/// The path of a string (or object key) containing `${env:`.
fn env_ref_in(path: &str, value: &Value) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::String(s) if s.contains(ENV_REF) => Some(if path.is_empty() {
            "<root>".to_string()
        } else {
            path.to_string()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| env_ref_in(&format!("{path}[{i}]"), v)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains(ENV_REF) {
                Some(join(k))
            } else {
                env_ref_in(&join(k), v)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> RunRecord {
        RunRecord::new(
            "ds",
            "run",
            "cvat",
            "2026-01-01T00:00:00Z",
            "0011223344556677".into(),
        )
    }

    #[test]
    fn plain_record_passes() {
        let mut r = record();
        r.backend_config
            .insert("url".into(), json!("http://localhost:8080"));
        r.backend_config.insert("task_size".into(), json!(10));
        assert!(assert_no_secrets(&r).is_ok());
    }

    #[test]
    fn secret_keys_are_refused_at_any_depth() {
        for (k, v) in [
            ("password", json!("x")),
            ("api_key", json!("x")),
            ("API_KEY", json!("x")),
            ("access_token", json!("x")),
            ("settings", json!({"nested": {"refresh_token": "x"}})),
        ] {
            let mut r = record();
            r.backend_config.insert(k.into(), v);
            let err = assert_no_secrets(&r).expect_err(k).to_string();
            assert!(err.contains("backend_config."), "{err}");
            assert!(!err.contains("\"x\""), "value leaked: {err}");
        }
    }

    #[test]
    fn env_references_are_refused_anywhere() {
        let mut r = record();
        r.samples = vec!["a".into(), "${env:SECRET}".into()];
        let err = assert_no_secrets(&r).unwrap_err().to_string();
        assert!(err.contains("`samples[1]`"), "{err}");

        let mut r = record();
        r.backend_config
            .insert("settings".into(), json!({"url": "https://${env:HOST}/"}));
        let err = assert_no_secrets(&r).unwrap_err().to_string();
        assert!(err.contains("`backend_config.settings.url`"), "{err}");
    }
}
