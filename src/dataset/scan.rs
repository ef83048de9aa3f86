//! Walking JSON text that is already known to be valid (checked at load, or written by
//! serde_json) without building values: an object's members as key and value spans, an
//! array's items as spans. Projections of a document spend most of their time skipping what
//! they do not keep; a validating parser checks every byte it skips, this only finds where
//! values end.
//!
//! Malformed text never panics: the walk stops early instead.

use std::borrow::Cow;
use std::ops::Range;

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
    {
        i += 1;
    }
    i
}

/// `at` is an opening quote: the index just past the closing one.
fn string_end(b: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while let Some(k) = b
        .get(i..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        if b[i + k] == b'"' {
            return i + k + 1;
        }
        // An escape: the next byte is never the end of the string.
        i += k + 2;
    }
    b.len()
}

/// The index just past the value starting at `at` (no whitespace before it).
fn value_end(b: &[u8], at: usize) -> usize {
    match b.get(at) {
        Some(b'"') => string_end(b, at),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&c) = b.get(i) {
                match c {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        _ => {
            let mut i = at;
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
            {
                i += 1;
            }
            i
        }
    }
}

/// The members of the object `text` holds: each key (unescaped) with the span of its value
/// in `text`, in order. Nothing when `text` is not an object.
pub fn members(text: &str) -> Members<'_> {
    let i = skip_ws(text.as_bytes(), 0);
    Members {
        text,
        i,
        open: b'{',
        close: b'}',
    }
}

/// The spans of the items of the array `text` holds, in order. Nothing when `text` is not an
/// array.
pub fn items(text: &str) -> Items<'_> {
    let i = skip_ws(text.as_bytes(), 0);
    Items(Members {
        text,
        i,
        open: b'[',
        close: b']',
    })
}

/// See [`members`].
pub struct Members<'t> {
    text: &'t str,
    /// At the opening bracket, a comma, or past the end.
    i: usize,
    open: u8,
    close: u8,
}

impl Members<'_> {
    /// Steps over the opening bracket or the comma before the next entry: where it starts.
    fn entry_start(&mut self) -> Option<usize> {
        let b = self.text.as_bytes();
        let at = *b.get(self.i)?;
        if at != self.open && at != b',' {
            self.i = b.len();
            return None;
        }
        self.open = b',';
        let i = skip_ws(b, self.i + 1);
        if b.get(i).is_none_or(|c| *c == self.close) {
            self.i = b.len();
            return None;
        }
        Some(i)
    }

    /// The span of the value starting at `at`; leaves the walk after it.
    fn value(&mut self, at: usize) -> Range<usize> {
        let b = self.text.as_bytes();
        let end = value_end(b, at);
        self.i = skip_ws(b, end);
        at..end
    }
}

impl<'t> Iterator for Members<'t> {
    type Item = (Cow<'t, str>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.text.as_bytes();
        let k = self.entry_start()?;
        if b[k] != b'"' {
            self.i = b.len();
            return None;
        }
        let k_end = string_end(b, k);
        let colon = skip_ws(b, k_end);
        if b.get(colon) != Some(&b':') {
            self.i = b.len();
            return None;
        }
        // The key's quotes are ASCII, so the slices are on character boundaries.
        let raw = &self.text[k + 1..k_end - 1];
        let key = if raw.contains('\\') {
            let Ok(key) = serde_json::from_str(&self.text[k..k_end]) else {
                self.i = b.len();
                return None;
            };
            Cow::Owned(key)
        } else {
            Cow::Borrowed(raw)
        };
        let v = skip_ws(b, colon + 1);
        Some((key, self.value(v)))
    }
}

/// See [`items`].
pub struct Items<'t>(Members<'t>);

impl Iterator for Items<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let at = self.0.entry_start()?;
        Some(self.0.value(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn walk(text: &str) -> Vec<(String, Value)> {
        members(text)
            .map(|(k, span)| (k.into_owned(), serde_json::from_str(&text[span]).unwrap()))
            .collect()
    }

    #[test]
    fn members_and_items_of_nested_text() {
        let text = r#" { "a" : [1, {"x": "}]"}, []] , "b\"q": "s\\\"", "c":-1.5e3,"d":{},
            "e" : null }"#;
        assert_eq!(
            walk(text),
            [
                ("a".into(), json!([1, {"x": "}]"}, []])),
                ("b\"q".into(), json!("s\\\"")),
                ("c".into(), json!(-1.5e3)),
                ("d".into(), json!({})),
                ("e".into(), Value::Null),
            ]
        );
        let a = &text[members(text).next().unwrap().1];
        let spans: Vec<&str> = items(a).map(|s| &a[s]).collect();
        assert_eq!(spans, ["1", r#"{"x": "}]"}"#, "[]"]);
        assert_eq!(members("{}").count(), 0);
        assert_eq!(items(" [ ] ").count(), 0);
        assert_eq!(members("[1]").count(), 0, "not an object");
        assert_eq!(items("{}").count(), 0, "not an array");
    }

    #[test]
    fn malformed_text_ends_the_walk() {
        for text in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\" 1}",
            "{1: 2}",
            "{\"a\": [1,",
            "[1 2]",
        ] {
            let _ = members(text).count();
            let _ = items(text).count();
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            "[a-z\"\\\\{}\\[\\],: \u{e9}\n]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("[a-z\"\\\\{}: ]{0,4}", inner), 0..5)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn walking_finds_what_serde_parses(v in arb_json(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            match &v {
                Value::Object(o) => {
                    let got = walk(&text);
                    let want: Vec<(String, Value)> = o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    prop_assert_eq!(got, want);
                }
                Value::Array(a) => {
                    let got: Vec<Value> = items(&text).map(|s| serde_json::from_str(&text[s]).unwrap()).collect();
                    prop_assert_eq!(&got, a);
                }
                _ => prop_assert_eq!(members(&text).count() + items(&text).count(), 0),
            }
        }
    }
}
