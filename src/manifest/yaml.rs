//! A YAML tree whose every node and key carries its byte span in the source.
//!
//! Built from `saphyr-parser`'s event stream rather than a serde deserializer because
//! validation needs the position of every node (to point at it) and must see duplicate keys
//! (a map type would silently keep the last one). Scalars resolve by the YAML 1.2 core schema.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span as RawSpan, Tag};
use std::collections::HashMap;

/// Nesting deeper than this is refused: no manifest needs it, and it bounds recursion.
pub const MAX_DEPTH: usize = 64;
/// Nodes one document may expand to (aliases included), against alias bombs.
pub const MAX_NODES: usize = 1_000_000;

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The span's length in bytes (at least 1 so a label always shows).
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start).max(1)
    }

    /// Whether the span is empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// A node's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping; keys are kept as their scalar text.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
}

impl Node {
    /// A short name of the node's kind, for messages ("a string", "a list", ...).
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The entries of a mapping node.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The entry for `key` of a mapping node.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// The value under `key` of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The string of a string node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The span of the node found by following `path` (map keys or list indexes); stops at
    /// the deepest node that exists. For a map key, points at the key itself when `at_key`.
    pub fn span_of(&self, path: &[PathItem<'_>], at_key: bool) -> Span {
        let mut node = self;
        let mut span = self.span;
        for (i, item) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            match (item, &node.value) {
                (PathItem::Key(k), Value::Map(entries)) => {
                    let Some(e) = entries.iter().find(|e| e.key == *k) else {
                        return span;
                    };
                    span = if last && at_key {
                        e.key_span
                    } else {
                        e.value.span
                    };
                    node = &e.value;
                }
                (PathItem::Index(ix), Value::Seq(items)) => {
                    let Some(n) = items.get(*ix) else { return span };
                    span = n.span;
                    node = n;
                }
                _ => return span,
            }
        }
        span
    }

    /// The node as JSON, for typed deserialization after validation.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// One step of a path into a node tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathItem<'a> {
    Key(&'a str),
    Index(usize),
}

/// Parse every document of a YAML stream. Empty documents come back as `Null` nodes.
pub fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let lines = LineIndex::new(text);
    Builder {
        parser: Parser::new_from_str(text),
        lines: &lines,
        text,
        anchors: HashMap::new(),
        nodes: 0,
    }
    .stream()
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    lines: &'a LineIndex,
    text: &'a str,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

/// A container being built.
enum Open {
    Seq(Span, usize, Vec<Node>),
    Map(Span, usize, Vec<Entry>, Option<(String, Span, Node)>),
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok((ev, raw))) => Ok((ev, self.span(raw))),
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(SyntaxError {
                span: Span {
                    start: self.text.len(),
                    end: self.text.len(),
                },
                message: "unexpected end of input".into(),
                help: None,
            }),
        }
    }

    fn span(&self, raw: RawSpan) -> Span {
        let start = self
            .lines
            .byte(self.text, raw.start.line(), raw.start.col());
        let end = self
            .lines
            .byte(self.text, raw.end.line(), raw.end.col())
            .max(start);
        Span { start, end }
    }

    fn scan_error(&self, e: &ScanError) -> SyntaxError {
        let m = e.marker();
        let start = self.lines.byte(self.text, m.line(), m.col());
        let line = self.lines.line_text(self.text, m.line());
        let help = if line.trim_end_matches(['\r', '\n']).contains('\t') {
            Some("YAML does not allow tabs for indentation; indent with spaces".to_string())
        } else {
            None
        };
        SyntaxError {
            span: Span {
                start,
                end: (start + 1).min(self.text.len()),
            },
            message: format!("invalid YAML: {}", e.info()),
            help,
        }
    }

    fn stream(mut self) -> Result<Vec<Node>, SyntaxError> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    self.anchors.clear();
                    self.nodes = 0;
                    docs.push(self.document(span)?);
                }
                _ => return Err(self.unexpected(span)),
            }
        }
    }

    fn unexpected(&self, span: Span) -> SyntaxError {
        SyntaxError {
            span,
            message: "invalid YAML: unexpected event".into(),
            help: None,
        }
    }

    /// Build one document's root node with an explicit stack (no recursion on input depth).
    fn document(&mut self, doc_span: Span) -> Result<Node, SyntaxError> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            let done = match ev {
                Event::DocumentEnd | Event::StreamEnd if stack.is_empty() => {
                    return Ok(Node {
                        span: doc_span,
                        value: Value::Null,
                    });
                }
                Event::SequenceStart(anchor, tag) => {
                    self.check_tag(tag.as_deref(), span, "seq")?;
                    self.push(&mut stack, Open::Seq(span, anchor, Vec::new()), span)?;
                    None
                }
                Event::MappingStart(anchor, tag) => {
                    self.check_tag(tag.as_deref(), span, "map")?;
                    self.push(&mut stack, Open::Map(span, anchor, Vec::new(), None), span)?;
                    None
                }
                Event::SequenceEnd => match stack.pop() {
                    Some(Open::Seq(start, anchor, items)) => Some(self.finish(
                        Node {
                            span: Span {
                                start: start.start,
                                end: span.end,
                            },
                            value: Value::Seq(items),
                        },
                        anchor,
                    )),
                    _ => return Err(self.unexpected(span)),
                },
                Event::MappingEnd => match stack.pop() {
                    Some(Open::Map(start, anchor, entries, None)) => Some(self.finish(
                        Node {
                            span: Span {
                                start: start.start,
                                end: span.end,
                            },
                            value: Value::Map(entries),
                        },
                        anchor,
                    )),
                    _ => return Err(self.unexpected(span)),
                },
                Event::Scalar(text, style, anchor, tag) => {
                    if let Some(t) = tag.as_deref() {
                        let known =
                            ["str", "null", "bool", "int", "float"].contains(&t.suffix.as_str());
                        if !t.is_yaml_core_schema() || !known {
                            return Err(SyntaxError {
                                span,
                                message: format!("unsupported YAML tag `{}`", tag_name(t)),
                                help: Some("manifests use plain YAML without custom tags".into()),
                            });
                        }
                    }
                    let value = resolve_scalar(&text, style, tag.as_deref()).ok_or_else(|| {
                        SyntaxError {
                            span,
                            message: format!(
                                "`{text}` is not a valid {}",
                                tag.as_deref().map_or("scalar".into(), tag_name)
                            ),
                            help: None,
                        }
                    })?;
                    self.count(span)?;
                    Some(self.finish(Node { span, value }, anchor))
                }
                Event::Alias(id) => {
                    let node = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                        span,
                        message: "alias to an unknown anchor".into(),
                        help: None,
                    })?;
                    self.nodes += count_nodes(&node);
                    self.count(span)?;
                    Some(Node {
                        span,
                        value: node.value,
                    })
                }
                _ => return Err(self.unexpected(span)),
            };
            if let Some(node) = done {
                match stack.last_mut() {
                    None => {
                        // The document's DocumentEnd (implicit or explicit) follows.
                        return Ok(node);
                    }
                    Some(Open::Seq(_, _, items)) => items.push(node),
                    Some(Open::Map(_, _, entries, pending)) => match pending.take() {
                        None => {
                            let key = match &node.value {
                                Value::Str(s) => s.clone(),
                                Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null => {
                                    self.text[node.span.start..node.span.end].trim().to_string()
                                }
                                _ => {
                                    return Err(SyntaxError {
                                        span: node.span,
                                        message: "mapping keys must be plain scalars".into(),
                                        help: None,
                                    });
                                }
                            };
                            if let Some(first) = entries.iter().find(|e| e.key == key) {
                                let (l, c) = self.lines.line_col(self.text, first.key_span.start);
                                return Err(SyntaxError {
                                    span: node.span,
                                    message: format!("duplicate key `{key}`"),
                                    help: Some(format!(
                                        "`{key}` is already set at line {l}, column {c}"
                                    )),
                                });
                            }
                            *pending = Some((key, node.span, node));
                        }
                        Some((key, key_span, _)) => entries.push(Entry {
                            key,
                            key_span,
                            value: node,
                        }),
                    },
                }
            }
        }
    }

    fn push(&mut self, stack: &mut Vec<Open>, open: Open, span: Span) -> Result<(), SyntaxError> {
        if stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                span,
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                help: Some(
                    "a manifest never needs this much nesting; is this the right file?".into(),
                ),
            });
        }
        self.count(span)?;
        stack.push(open);
        Ok(())
    }

    fn count(&mut self, span: Span) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                span,
                message: format!("document expands to more than {MAX_NODES} nodes"),
                help: Some("aliases that expand exponentially are refused".into()),
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Node {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        node
    }

    fn check_tag(&self, tag: Option<&Tag>, span: Span, expected: &str) -> Result<(), SyntaxError> {
        match tag {
            None => Ok(()),
            Some(t) if t.is_yaml_core_schema() && t.suffix == expected => Ok(()),
            Some(t) => Err(SyntaxError {
                span,
                message: format!("unsupported YAML tag `{}`", tag_name(t)),
                help: Some("manifests use plain YAML without custom tags".into()),
            }),
        }
    }
}

fn tag_name(t: &Tag) -> String {
    if t.is_yaml_core_schema() {
        format!("!!{}", t.suffix)
    } else {
        format!("{}{}", t.handle, t.suffix)
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|e| 1 + count_nodes(&e.value))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Resolve a scalar by the YAML 1.2 core schema; quoted and block scalars are strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Option<Value> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return None;
        }
        return match tag.suffix.as_str() {
            "str" => Some(Value::Str(text.to_string())),
            "null" => core_null(text).then_some(Value::Null),
            "bool" => core_bool(text).map(Value::Bool),
            "int" => core_int(text).map(Value::Int),
            "float" => core_float(text)
                .or_else(|| core_int(text).map(|i| i as f64))
                .map(Value::Float),
            _ => None,
        };
    }
    if style != ScalarStyle::Plain {
        return Some(Value::Str(text.to_string()));
    }
    Some(if core_null(text) {
        Value::Null
    } else if let Some(b) = core_bool(text) {
        Value::Bool(b)
    } else if let Some(i) = core_int(text) {
        Value::Int(i)
    } else if let Some(f) = core_float(text) {
        Value::Float(f)
    } else {
        Value::Str(text.to_string())
    })
}

fn core_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn core_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn core_int(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = s.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok();
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn core_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(if s.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == s.len() => return Some(f64::NAN),
        _ => {}
    }
    let ok = !unsigned.is_empty()
        && unsigned
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if ok { s.parse().ok() } else { None }
}

/// Line starts of a text, to turn (line, column-in-chars) into byte offsets and back.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Index the line starts of `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// Byte offset of 1-based `line`, 0-based `col` (in chars).
    pub fn byte(&self, text: &str, line: usize, col: usize) -> usize {
        let Some(&start) = self.starts.get(line.saturating_sub(1)) else {
            return text.len();
        };
        text[start..]
            .char_indices()
            .nth(col)
            .map_or(text.len(), |(i, _)| start + i)
    }

    /// 1-based line and column (in chars) of a byte offset.
    pub fn line_col(&self, text: &str, byte: usize) -> (usize, usize) {
        let byte = byte.min(text.len());
        let line = self.starts.partition_point(|&s| s <= byte);
        let start = self.starts[line - 1];
        let col = text.get(start..byte).map_or(0, |s| s.chars().count());
        (line, col + 1)
    }

    fn line_text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let start = self
            .starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        let end = self.starts.get(line).copied().unwrap_or(text.len());
        &text[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Node {
        let mut docs = parse(src).expect("valid yaml");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let n = one("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: hello\ng: 0x10\nh: -.inf\n");
        let v: Vec<_> = n
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.value.value.clone())
            .collect();
        assert_eq!(v[0], Value::Int(1));
        assert_eq!(v[1], Value::Float(1.5));
        assert_eq!(v[2], Value::Bool(true));
        assert_eq!(v[3], Value::Null);
        assert_eq!(v[4], Value::Str("1".into()));
        assert_eq!(v[5], Value::Str("hello".into()));
        assert_eq!(v[6], Value::Int(16));
        assert_eq!(v[7], Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let src = "key: abc\nlist:\n  - x\n  - yz\n";
        let n = one(src);
        let e = n.entry("list").unwrap();
        assert_eq!(&src[e.key_span.start..e.key_span.end], "list");
        let Value::Seq(items) = &e.value.value else {
            panic!("seq")
        };
        assert_eq!(&src[items[1].span.start..items[1].span.end], "yz");
        let s = n.span_of(&[PathItem::Key("list"), PathItem::Index(0)], false);
        assert_eq!(&src[s.start..s.end], "x");
    }

    #[test]
    fn duplicate_keys_are_errors_naming_the_first() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.message, "duplicate key `a`");
        assert_eq!(err.span.start, 10);
        assert!(err.help.unwrap().contains("line 1, column 1"));
    }

    #[test]
    fn tabs_get_a_hint() {
        let err = parse("a:\n\tb: 1\n").unwrap_err();
        assert!(err.help.unwrap().contains("tabs"), "{}", err.message);
    }

    #[test]
    fn several_documents_and_empty_ones() {
        let docs = parse("a: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].value, Value::Null);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let src = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let err = parse(&src).unwrap_err();
        assert!(
            err.message.contains("nesting deeper than 64"),
            "{}",
            err.message
        );
        // Far deeper input stops in the parser itself, still as an error.
        let err = parse(&"[".repeat(100_000)).unwrap_err();
        assert!(err.message.contains("recursion limit"), "{}", err.message);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut src = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in 'b'..='k' {
            src.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = name;
        }
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("nodes"), "{}", err.message);
    }

    #[test]
    fn line_index_round_trips_multibyte() {
        let text = "é: 1\nclé: ü\n";
        let ix = LineIndex::new(text);
        let b = ix.byte(text, 2, 5);
        assert_eq!(&text[b..b + 2], "ü");
        assert_eq!(ix.line_col(text, b), (2, 6));
    }
}
