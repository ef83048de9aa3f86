//! Structural checks of a YAML tree against a JSON Schema generated from the Rust types.
//!
//! The schema is the one users' editors see, so the checks and the editor can never
//! disagree. Unlike a generic JSON Schema validator this walker reports *every* problem with
//! the span of the offending key or value, and explains unions ("a string or a list") and
//! unknown keys ("did you mean `label_schema`?") the way a person would.

use super::yaml::{Node, Span, Value};
use serde_json::{Map, Value as Json};

/// One structural problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub span: Span,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    /// The value may be a secret: never quote it.
    pub secret: bool,
}

/// Check `node` against `schema` (a root schema with its own `$defs`); `path` names the node
/// in messages (e.g. `backend_config`), empty for a document root.
pub fn check(node: &Node, schema: &Json, path: &str) -> Vec<Finding> {
    let mut walker = Walker {
        root: schema,
        out: Vec::new(),
    };
    walker.walk(node, schema, path);
    walker.out
}

/// The nearest candidate to `word`, when it is near enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word_l, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Help text for patterns, keyed by the pattern itself.
const PATTERN_HELP: &[(&str, &str, &str)] = &[
    (
        r"^[A-Za-z0-9_-]{1,64}$",
        "must be 1-64 characters of letters, digits, `_` and `-`",
        "run keys name backend objects and state files, so they are restricted",
    ),
    (
        r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$",
        "secrets must not be written into files",
        "reference an environment variable instead, e.g. `${env:CVAT_PASSWORD}`; it is read at run time and never stored",
    ),
];

/// Values FiftyOne accepts that annoform refuses, with why: (path, value, explanation).
const REFUSED_VALUES: &[(&str, &str, &str)] = &[(
    "load.unexpected",
    "prompt",
    "`prompt` asks at an interactive prompt in FiftyOne; plan and apply never prompt, so \
     choose the answer here: `keep`, `ignore`, `error`, `report`, or `return` to write \
     the unexpected labels to a JSON file",
)];

struct Walker<'s> {
    root: &'s Json,
    out: Vec<Finding>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the document".into()
    } else {
        format!("`{path}`")
    }
}

fn type_list(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_matches(t: &str, node: &Node) -> bool {
    matches!(
        (t, &node.value),
        ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("integer", Value::Int(_))
            | ("number", Value::Int(_) | Value::Float(_))
            | ("string", Value::Str(_))
            | ("array", Value::Seq(_))
            | ("object", Value::Map(_))
    )
}

fn describe_type(t: &str) -> &'static str {
    match t {
        "null" => "null",
        "boolean" => "true/false",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    }
}

fn json_matches(j: &Json, node: &Node) -> bool {
    match (j, &node.value) {
        (Json::String(s), Value::Str(v)) => s == v,
        (Json::Bool(b), Value::Bool(v)) => b == v,
        (Json::Number(n), Value::Int(v)) => n.as_i64() == Some(*v),
        (Json::Null, Value::Null) => true,
        _ => false,
    }
}

fn json_text(j: &Json) -> String {
    match j {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn node_text(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        _ => node.kind().into(),
    }
}

impl<'s> Walker<'s> {
    fn resolve(&self, mut schema: &'s Json) -> &'s Json {
        for _ in 0..32 {
            let Some(r) = schema.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some(target) = r
                .strip_prefix("#/")
                .and_then(|p| p.split('/').try_fold(self.root, |s, k| s.get(k)))
            else {
                break;
            };
            schema = target;
        }
        schema
    }

    fn push(&mut self, span: Span, message: String, label: &str, help: Option<String>) {
        self.out.push(Finding {
            span,
            message,
            label: label.into(),
            help,
            secret: false,
        });
    }

    /// "`path` must be X or Y, found Z".
    fn mismatch(
        &mut self,
        node: &Node,
        path: &str,
        expected: &[String],
        label: &str,
        help: Option<String>,
    ) {
        let message = format!(
            "{} must be {}, found {}",
            display_path(path),
            or_list(expected),
            node.kind()
        );
        self.push(node.span, message, label, help);
    }

    fn walk(&mut self, node: &Node, schema: &'s Json, path: &str) {
        let schema = self.resolve(schema);
        if !schema.is_object() {
            return;
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Json::as_array)
        {
            // An enum whose variants are documented is a union of constants: one list.
            match self.choices(branches) {
                Some(values) => self.enumeration(node, &values, path),
                None => self.union(node, branches, path),
            }
            return;
        }
        if let Some(values) = schema.get("enum").and_then(Json::as_array) {
            self.enumeration(node, values, path);
            return;
        }
        if let Some(c) = schema.get("const") {
            if !json_matches(c, node) {
                let expected = json_text(c);
                self.push(
                    node.span,
                    format!(
                        "{} must be `{expected}`, found `{}`",
                        display_path(path),
                        node_text(node)
                    ),
                    "unexpected value",
                    None,
                );
            }
            return;
        }
        let types = type_list(schema);
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, node)) {
            let expected: Vec<String> = types
                .iter()
                .filter(|t| **t != "null")
                .map(|t| describe_type(t).to_string())
                .collect();
            let label = format!("expected {}", or_list(&expected));
            self.mismatch(node, path, &expected, &label, None);
            return;
        }
        match &node.value {
            Value::Map(entries) => self.object(node, entries, schema, path),
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, item_schema, &format!("{path}[{i}]"));
                    }
                }
                if let Some(min) = schema.get("minItems").and_then(Json::as_u64) {
                    if (items.len() as u64) < min {
                        self.push(
                            node.span,
                            format!("{} needs at least {min} item(s)", display_path(path)),
                            "too few items",
                            None,
                        );
                    }
                }
            }
            Value::Str(s) => self.string(node, s, schema, path),
            Value::Int(i) => self.number(node, *i as f64, schema, path),
            Value::Float(f) => self.number(node, *f, schema, path),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn object(
        &mut self,
        node: &Node,
        entries: &[super::yaml::Entry],
        schema: &'s Json,
        path: &str,
    ) {
        static EMPTY: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
        let props = schema
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        let additional = schema.get("additionalProperties");
        for e in entries {
            let child = join(path, &e.key);
            if let Some(p) = props.get(&e.key) {
                self.walk(&e.value, p, &child);
            } else if let Some(extra) =
                additional.filter(|a| a.is_object() || **a == Json::Bool(true))
            {
                self.walk(&e.value, extra, &child);
            } else if additional == Some(&Json::Bool(false)) {
                let valid: Vec<&str> = props.keys().map(String::as_str).collect();
                let help = match suggest(&e.key, valid.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("valid keys here: {}", valid.join(", ")),
                };
                let within = if path.is_empty() {
                    String::new()
                } else {
                    format!(" in `{path}`")
                };
                self.push(
                    e.key_span,
                    format!("unknown key `{}`{within}", e.key),
                    "unknown key",
                    Some(help),
                );
            }
        }
        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            for r in required.iter().filter_map(Json::as_str) {
                if !entries.iter().any(|e| e.key == r) {
                    let at = if path.is_empty() {
                        "the document".to_string()
                    } else {
                        format!("`{path}`")
                    };
                    self.push(
                        Span {
                            start: node.span.start,
                            end: node.span.start,
                        },
                        format!("missing required key `{r}` in {at}"),
                        &format!("`{r}` is missing here"),
                        None,
                    );
                }
            }
        }
    }

    fn string(&mut self, node: &Node, s: &str, schema: &Json, path: &str) {
        if let Some(p) = schema.get("pattern").and_then(Json::as_str) {
            let ok = regex::Regex::new(p)
                .map(|re| re.is_match(s))
                .unwrap_or(true);
            if !ok {
                let known = PATTERN_HELP.iter().find(|(pat, _, _)| *pat == p);
                let message = match known {
                    // Never echo what may be a secret.
                    Some((pat, what, _)) if pat.contains("env:") => {
                        format!("invalid {}: {what}", display_path(path))
                    }
                    Some((_, what, _)) => format!("invalid {}: `{s}` {what}", display_path(path)),
                    None => format!("invalid {}: `{s}` must match `{p}`", display_path(path)),
                };
                self.push(
                    node.span,
                    message,
                    "invalid value",
                    known.map(|(_, _, help)| help.to_string()),
                );
                if let (Some(last), Some((pat, _, _))) = (self.out.last_mut(), known) {
                    last.secret = pat.contains("env:");
                }
            }
        }
        if let Some(min) = schema.get("minLength").and_then(Json::as_u64) {
            if (s.chars().count() as u64) < min {
                self.push(
                    node.span,
                    format!("{} must not be empty", display_path(path)),
                    "empty",
                    None,
                );
            }
        }
    }

    fn number(&mut self, node: &Node, x: f64, schema: &Json, path: &str) {
        let min = schema.get("minimum").and_then(Json::as_f64);
        let max = schema.get("maximum").and_then(Json::as_f64);
        let below = min.is_some_and(|m| x < m);
        let above = max.is_some_and(|m| x > m);
        if below || above {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => unreachable!("checked above"),
            };
            self.push(
                node.span,
                format!(
                    "{} must be {range}, found {}",
                    display_path(path),
                    node_text(node)
                ),
                "out of range",
                None,
            );
        }
    }

    /// The values of a union whose every branch is a constant or an enum, in order.
    fn choices(&self, branches: &'s [Json]) -> Option<Vec<Json>> {
        let mut out = Vec::new();
        for b in branches {
            let b = self.resolve(b);
            match (b.get("const"), b.get("enum").and_then(Json::as_array)) {
                (Some(c), _) => out.push(c.clone()),
                (None, Some(values)) => out.extend(values.iter().cloned()),
                (None, None) => return None,
            }
        }
        Some(out)
    }

    fn enumeration(&mut self, node: &Node, values: &[Json], path: &str) {
        if values.iter().any(|v| json_matches(v, node)) {
            return;
        }
        let names: Vec<String> = values.iter().map(json_text).collect();
        let text = node_text(node);
        let refused = REFUSED_VALUES
            .iter()
            .find(|(p, v, _)| (path == *p || path.ends_with(&format!(".{p}"))) && *v == text)
            .map(|(_, _, why)| (*why).to_string());
        let help = refused.or_else(|| {
            suggest(&text, names.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
        });
        let message = match names.as_slice() {
            [only] => format!("{} must be `{only}`, found `{text}`", display_path(path)),
            _ => format!(
                "{} must be one of: {}; found `{text}`",
                display_path(path),
                names.join(", ")
            ),
        };
        self.push(node.span, message, "invalid value", help);
    }

    /// The single key of an externally tagged enum variant (`{match_tags: ...}`).
    fn tag_of(&self, branch: &'s Json) -> Option<&'s str> {
        let b = self.resolve(branch);
        let required = b.get("required")?.as_array()?;
        let props = b.get("properties")?.as_object()?;
        (required.len() == 1
            && props.len() == 1
            && b.get("additionalProperties") == Some(&Json::Bool(false)))
        .then(|| required[0].as_str())
        .flatten()
    }

    /// Whether `node` has the right shape to be meant as `branch` (not whether it is valid).
    fn shallow_fit(&self, node: &Node, branch: &'s Json) -> bool {
        let b = self.resolve(branch);
        if let Some(tag) = self.tag_of(b) {
            return node
                .entries()
                .is_some_and(|e| e.len() == 1 && e[0].key == tag);
        }
        if let Some(inner) = b
            .get("anyOf")
            .or_else(|| b.get("oneOf"))
            .and_then(Json::as_array)
        {
            return inner.iter().any(|i| self.shallow_fit(node, i));
        }
        if let Some(values) = b.get("enum").and_then(Json::as_array) {
            return values.iter().any(|v| {
                std::mem::discriminant(&json_kind(v)) == std::mem::discriminant(&node_kind(node))
            });
        }
        if let Some(c) = b.get("const") {
            return json_matches(c, node);
        }
        let types = type_list(b);
        types.is_empty() || types.iter().any(|t| type_matches(t, node))
    }

    fn describe(&self, branch: &'s Json) -> Vec<String> {
        let b = self.resolve(branch);
        if let Some(c) = b.get("const") {
            return vec![format!("`{}`", json_text(c))];
        }
        if let Some(tag) = self.tag_of(b) {
            return vec![format!("`{tag}: ...`")];
        }
        if let Some(inner) = b
            .get("anyOf")
            .or_else(|| b.get("oneOf"))
            .and_then(Json::as_array)
        {
            return inner.iter().flat_map(|i| self.describe(i)).collect();
        }
        if let Some(values) = b.get("enum").and_then(Json::as_array) {
            return values
                .iter()
                .map(|v| format!("`{}`", json_text(v)))
                .collect();
        }
        type_list(b)
            .into_iter()
            .filter(|t| *t != "null")
            .map(|t| describe_type(t).to_string())
            .collect()
    }

    fn union(&mut self, node: &Node, branches: &'s [Json], path: &str) {
        let fitting: Vec<&Json> = branches
            .iter()
            .filter(|b| self.shallow_fit(node, b))
            .collect();
        if fitting.is_empty() {
            let tags: Vec<&str> = branches.iter().filter_map(|b| self.tag_of(b)).collect();
            if !tags.is_empty() {
                if let Some([entry]) = node.entries() {
                    let help = suggest(&entry.key, tags.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("expected one of: {}", tags.join(", ")));
                    self.push(
                        entry.key_span,
                        format!("unknown `{}` in {}", entry.key, display_path(path)),
                        "not recognised",
                        Some(help),
                    );
                    return;
                }
            }
            let mut expected: Vec<String> =
                branches.iter().flat_map(|b| self.describe(b)).collect();
            expected.dedup();
            let help = (!tags.is_empty())
                .then(|| format!("each entry is a mapping with one key: {}", tags.join(", ")));
            self.mismatch(node, path, &expected, "wrong type", help);
            return;
        }
        let mut best: Option<Vec<Finding>> = None;
        for b in fitting {
            let mut sub = Walker {
                root: self.root,
                out: Vec::new(),
            };
            sub.walk(node, b, path);
            if sub.out.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|f| sub.out.len() < f.len()) {
                best = Some(sub.out);
            }
        }
        self.out.extend(best.unwrap_or_default());
    }
}

fn json_kind(j: &Json) -> Value {
    match j {
        Json::String(_) => Value::Str(String::new()),
        Json::Bool(_) => Value::Bool(false),
        Json::Number(_) => Value::Int(0),
        _ => Value::Null,
    }
}

fn node_kind(n: &Node) -> Value {
    match &n.value {
        Value::Str(_) => Value::Str(String::new()),
        Value::Bool(_) => Value::Bool(false),
        Value::Int(_) | Value::Float(_) => Value::Int(0),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;

    fn run_schema() -> Json {
        serde_json::to_value(schemars::schema_for!(crate::manifest::AnnotationRun)).unwrap()
    }

    fn findings(src: &str) -> Vec<Finding> {
        let doc = yaml::parse(src).unwrap().remove(0);
        check(&doc, &run_schema(), "")
    }

    const BASE: &str = "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: k\ndataset: d\n";

    #[test]
    fn a_valid_document_has_no_findings() {
        let src = format!(
            "{BASE}label_field: gt\nclasses: [a, {{classes: [b], attributes: {{x: {{type: text}}}}}}]\nview:\n  - match_tags: x\n  - take: {{size: 3}}\n  - sort_by: filepath\n"
        );
        assert_eq!(findings(&src), vec![]);
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let f = findings(&format!("{BASE}lable_schema: {{}}\n"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].message, "unknown key `lable_schema`");
        assert_eq!(f[0].help.as_deref(), Some("did you mean `label_schema`?"));
    }

    #[test]
    fn every_problem_is_reported() {
        let f = findings("apiVersion: annoform/v2\nkind: Run\nkey: 'bad key'\n");
        let msgs: Vec<_> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].contains("`apiVersion`"));
        assert!(msgs[1].contains("`kind`"));
        assert!(msgs[2].contains("`key`"));
        assert!(msgs[3].contains("missing required key `dataset`"));
    }

    #[test]
    fn unknown_view_stage_names_the_stage() {
        let f = findings(&format!("{BASE}view:\n  - match_tag: [a]\n"));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].message, "unknown `match_tag` in `view[0]`");
        assert_eq!(f[0].help.as_deref(), Some("did you mean `match_tags`?"));
    }

    #[test]
    fn wrong_types_inside_unions_are_explained() {
        let f = findings(&format!("{BASE}label_field: gt\nattributes: 3\n"));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].message
                .starts_with("`attributes` must be true/false, a list or a mapping"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn enum_values_suggest() {
        let f = findings(&format!("{BASE}label_field: gt\nlabel_type: detection\n"));
        assert_eq!(f[0].help.as_deref(), Some("did you mean `detections`?"));
    }

    #[test]
    fn nested_errors_inside_a_fitting_union_branch() {
        let f = findings(&format!(
            "{BASE}label_schema:\n  gt:\n    attributes:\n      a: {{type: txt}}\n"
        ));
        assert_eq!(f.len(), 1, "{f:#?}");
        assert!(
            f[0].message.contains("`label_schema.gt.attributes.a.type`"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].help.as_deref(), Some("did you mean `text`?"));
    }
}
