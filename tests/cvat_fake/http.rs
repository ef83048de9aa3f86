//! Requests and responses as the fake's handlers see them, plus the shared list helpers
//! (pagination, JSON-logic filters) and a small multipart parser.

use serde_json::{Value, json};

/// The content type of every JSON answer, errors included.
pub const CVAT_JSON: &str = "application/vnd.cvat+json";
/// Django's 500 page, as the real server sent it.
pub const SERVER_ERROR_HTML: &str = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n";

/// A request, decoded.
#[derive(Debug)]
pub struct Req {
    pub method: String,
    /// Path segments after `/api/`, percent-decoded.
    pub segments: Vec<String>,
    pub trailing_slash: bool,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `http://host:port` as the client addressed the server; urls in bodies use it.
    pub base: String,
}

impl Req {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query value of `name`.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Null` when empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Whether the body is multipart.
    pub fn is_multipart(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("multipart/form-data"))
    }
}

/// A response to send.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// A JSON answer with CVAT's content type.
    pub fn json(status: u16, body: Value) -> Self {
        Resp {
            status,
            content_type: Some(CVAT_JSON.into()),
            headers: vec![],
            body: serde_json::to_vec(&body).expect("json"),
        }
    }

    /// An answer with no body and no content type.
    pub fn empty(status: u16) -> Self {
        Resp {
            status,
            content_type: None,
            headers: vec![],
            body: vec![],
        }
    }

    /// A `text/html` answer.
    pub fn html(status: u16, text: &str) -> Self {
        Resp {
            status,
            content_type: Some("text/html; charset=utf-8".into()),
            headers: vec![],
            body: text.as_bytes().to_vec(),
        }
    }

    /// A binary answer.
    pub fn bytes(content_type: &str, body: Vec<u8>) -> Self {
        Resp {
            status: 200,
            content_type: Some(content_type.into()),
            headers: vec![],
            body,
        }
    }

    /// `{"detail": msg}` with `status`.
    pub fn detail(status: u16, msg: &str) -> Self {
        Resp::json(status, json!({ "detail": msg }))
    }

    /// A 400 whose body is a list of messages (DRF's non-field validation errors).
    pub fn list_error(msg: &str) -> Self {
        Resp::json(400, json!([msg]))
    }

    /// The 404 DRF gives for a missing object of `kind` (`Task`, `Job`, ...).
    pub fn not_found(kind: &str) -> Self {
        Resp::detail(404, &format!("No {kind} matches the given query."))
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One part of a multipart body.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// Splits a `multipart/form-data` body into its parts.
pub fn multipart(req: &Req) -> Vec<Part> {
    let ct = req.header("content-type").unwrap_or_default();
    let Some(boundary) = ct.split("boundary=").nth(1) else {
        return vec![];
    };
    let boundary = boundary.trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = vec![];
    for chunk in split_bytes(&req.body, &delim).into_iter().skip(1) {
        if chunk.starts_with(b"--") {
            break;
        }
        let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let Some(split) = find(chunk, b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&chunk[..split]).to_string();
        let mut data = chunk[split + 4..].to_vec();
        if data.ends_with(b"\r\n") {
            data.truncate(data.len() - 2);
        }
        parts.push(Part {
            name: disposition_param(&head, "name").unwrap_or_default(),
            filename: disposition_param(&head, "filename"),
            data,
        });
    }
    parts
}

fn disposition_param(head: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=\"");
    let pat2 = format!(";{key}=\"");
    let start = head.find(&pat).or_else(|| head.find(&pat2))? + pat.len();
    let end = head[start..].find('"')? + start;
    Some(head[start..end].to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(hay: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = vec![];
    let mut rest = hay;
    while let Some(i) = find(rest, delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    out.push(rest);
    out
}

/// A page of `items` in CVAT's envelope, honouring `page` and `page_size` (default 10, or
/// `all`); `next`/`previous` are absolute and keep the other query parameters, sorted as
/// the real server wrote them.
pub fn paginate(req: &Req, path: &str, items: Vec<Value>) -> Resp {
    let count = items.len();
    let size = match req.q("page_size") {
        Some("all") => count.max(1),
        Some(s) => s.parse::<usize>().ok().filter(|n| *n > 0).unwrap_or(10),
        None => 10,
    };
    let page = req
        .q("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1);
    let pages = count.div_ceil(size).max(1);
    if page == 0 || page > pages {
        return Resp::detail(404, "Invalid page.");
    }
    let link = |p: usize| {
        let mut q: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(k, _)| k != "page")
            .cloned()
            .collect();
        if p > 1 {
            q.push(("page".into(), p.to_string()));
        }
        q.sort();
        let qs: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let sep = if qs.is_empty() { "" } else { "?" };
        json!(format!("{}/api/{path}{sep}{}", req.base, qs.join("&")))
    };
    let results: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    json_page(
        count,
        if page < pages {
            link(page + 1)
        } else {
            Value::Null
        },
        if page > 1 {
            link(page - 1)
        } else {
            Value::Null
        },
        results,
    )
}

fn json_page(count: usize, next: Value, previous: Value, results: Vec<Value>) -> Resp {
    Resp::json(
        200,
        json!({ "count": count, "next": next, "previous": previous, "results": results }),
    )
}

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-decodes a path or query component (`+` as space when `plus` is set).
pub fn dec(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// Applies the `filter` query parameter (JSON logic) to `items`; `field` reads a filterable
/// field of an item, `None` meaning the term is not supported.
pub fn json_logic_filter(
    req: &Req,
    items: Vec<Value>,
    field: impl Fn(&Value, &str) -> Option<Value>,
) -> Result<Vec<Value>, Resp> {
    let Some(raw) = req.q("filter") else {
        return Ok(items);
    };
    let rule: Value = serde_json::from_str(raw)
        .map_err(|_| Resp::list_error("filter: Json syntax should be used"))?;
    check_terms(
        &rule,
        &items.first().cloned().unwrap_or(Value::Null),
        &field,
    )?;
    Ok(items
        .into_iter()
        .filter(|it| truthy(&eval(&rule, it, &field)))
        .collect())
}

fn check_terms(
    rule: &Value,
    sample: &Value,
    field: &impl Fn(&Value, &str) -> Option<Value>,
) -> Result<(), Resp> {
    match rule {
        Value::Object(m) => {
            for (op, args) in m {
                if op == "var" {
                    let name = args.as_str().unwrap_or_default();
                    if field(sample, name).is_none() {
                        return Err(Resp::list_error(&format!(
                            "filter: '{name}' term is not supported"
                        )));
                    }
                } else {
                    check_terms(args, sample, field)?;
                }
            }
            Ok(())
        }
        Value::Array(a) => a.iter().try_for_each(|v| check_terms(v, sample, field)),
        _ => Ok(()),
    }
}

fn eval(rule: &Value, item: &Value, field: &impl Fn(&Value, &str) -> Option<Value>) -> Value {
    let Value::Object(m) = rule else {
        return rule.clone();
    };
    let Some((op, args)) = m.iter().next() else {
        return Value::Null;
    };
    let args: Vec<Value> = match args {
        Value::Array(a) if op != "var" => a.iter().map(|a| eval(a, item, field)).collect(),
        other => vec![other.clone()],
    };
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    match op.as_str() {
        "var" => field(item, arg(0).as_str().unwrap_or_default()).unwrap_or(Value::Null),
        "==" => json!(loose_eq(&arg(0), &arg(1))),
        "!=" => json!(!loose_eq(&arg(0), &arg(1))),
        "and" => json!(args.iter().all(truthy)),
        "or" => json!(args.iter().any(truthy)),
        "!" => json!(!truthy(&arg(0))),
        // Dates compare as the ISO strings the server writes.
        "<" => json!(cmp_values(&arg(0), &arg(1)).is_lt()),
        "<=" => json!(cmp_values(&arg(0), &arg(1)).is_le()),
        ">" => json!(cmp_values(&arg(0), &arg(1)).is_gt()),
        ">=" => json!(cmp_values(&arg(0), &arg(1)).is_ge()),
        "in" => match (arg(0), arg(1)) {
            (needle, Value::Array(list)) => json!(list.iter().any(|v| loose_eq(&needle, v))),
            (Value::String(n), Value::String(h)) => json!(h.contains(&n)),
            _ => json!(false),
        },
        _ => Value::Null,
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.parse::<f64>().ok() == n.as_f64()
        }
        _ => a == b,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(_) => true,
    }
}

/// Orders `items` newest first, or by the `sort` parameter (`id`, `-id`, or a field name).
pub fn sort_items(req: &Req, items: &mut [Value], default_desc: bool) {
    let (key, desc) = match req.q("sort") {
        Some(s) if s.starts_with('-') => (s[1..].to_string(), true),
        Some(s) => (s.to_string(), false),
        None => ("id".to_string(), default_desc),
    };
    items.sort_by(|a, b| {
        let o = cmp_values(&a[&key], &b[&key]);
        if desc { o.reverse() } else { o }
    });
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}
