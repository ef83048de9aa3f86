//! The expression language of `where` (evaluated on each label) and `sort_by: {expr}`
//! (evaluated on each sample).
//!
//! ```text
//! expr    := or
//! or      := and ('||' and)*
//! and     := cmp ('&&' cmp)*
//! cmp     := sum (('==' | '!=' | '<' | '<=' | '>' | '>=' | 'in') sum)?    -- not chainable
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary)*
//! unary   := ('!' | '-') unary | primary
//! primary := number | 'string' | "string" | true | false | null | '[' (expr (',' expr)*)? ']'
//!          | '(' expr ')' | name '(' expr ')' | path
//! path    := name ('.' name | '[' integer ']')*
//! ```
//!
//! Semantics:
//! - A path reads the label (or sample) JSON: `label`, `confidence`, `bounding_box[2]`,
//!   `metadata.width`, `tags`, custom attributes (falling back to the legacy `attributes`
//!   dict's `value`), `id` for `_id`. On samples, a label field evaluates to the label; a name
//!   after a list maps over it (`ground_truth.detections.label` is the list of classes). A
//!   negative index counts from the end.
//! - A missing field is `null`. `==`/`!=` compare structurally (`null == null` is true, so
//!   `confidence == null` tests for a missing value); `<`, `<=`, `>`, `>=` are false unless
//!   both sides are numbers or both are strings — in particular every ordering comparison with
//!   `null` is false.
//! - `a in list` is membership, `'ab' in 'xabx'` is substring, anything else is false.
//! - `+` adds numbers and concatenates strings or lists; `-`, `*`, `/` take numbers; any other
//!   operand, or division by zero, gives `null`.
//! - `&&`, `||`, `!` use truthiness: `null`, `false`, `0`, NaN, `''` and `[]` are false.
//! - `count(x)`: labels in a label value (items of a list label, 1 for a single label), the
//!   length of a list, 0 for null. `len(x)`: length of a list or string, else `null`.
//!   `exists(x)`: `x` is not null.

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use super::ejson;
use super::labels::{self, Object};

/// A parse error at a character position of the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg} at {pos}")]
pub struct ExprError {
    /// 0-based character offset.
    pub pos: usize,
    /// What was expected or found.
    pub msg: String,
}

impl ExprError {
    /// The source with a caret under the error position, for terminals.
    pub fn render(&self, src: &str) -> String {
        format!("{src}\n{}^ {}", " ".repeat(self.pos), self.msg)
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number literal (never negative: `-1` is `Neg(1)`).
    Num(f64),
    /// A string literal.
    Str(String),
    /// `[a, b]`.
    List(Vec<Expr>),
    /// A field path.
    Path(Vec<Seg>),
    /// `!e`.
    Not(Box<Expr>),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `f(x)`.
    Call(Func, Box<Expr>),
}

impl Expr {
    /// The top-level fields the expression reads (`id` also reads `_id`), so callers can
    /// parse only those.
    pub fn root_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_roots(&mut out);
        out
    }

    /// Whether the expression reads the top-level field `root` only for whether it is set and
    /// how many labels it holds — as the whole expression, or as `count(root)` /
    /// `exists(root)` — so that what its labels contain cannot change the result.
    pub fn reads_only_shape(&self, root: &str) -> bool {
        self.is_bare(root) || self.shape_inside(root)
    }

    fn is_bare(&self, root: &str) -> bool {
        matches!(self, Expr::Path(segs) if matches!(segs.as_slice(), [Seg::Key(k)] if k == root))
    }

    fn shape_inside(&self, root: &str) -> bool {
        match self {
            Expr::Call(Func::Count | Func::Exists, a) if a.is_bare(root) => true,
            Expr::Path(_) => !self.root_fields().iter().any(|r| r == root),
            Expr::List(items) => items.iter().all(|i| i.shape_inside(root)),
            Expr::Not(a) | Expr::Neg(a) | Expr::Call(_, a) => a.shape_inside(root),
            Expr::Bin(_, a, b) => a.shape_inside(root) && b.shape_inside(root),
            Expr::Null | Expr::Bool(_) | Expr::Num(_) | Expr::Str(_) => true,
        }
    }

    fn collect_roots(&self, out: &mut Vec<String>) {
        match self {
            Expr::Path(segs) => {
                if let Some(Seg::Key(k)) = segs.first() {
                    for name in [k.as_str(), if k == "id" { "_id" } else { "" }] {
                        if !name.is_empty() && !out.iter().any(|o| o == name) {
                            out.push(name.to_owned());
                        }
                    }
                }
            }
            Expr::List(items) => items.iter().for_each(|i| i.collect_roots(out)),
            Expr::Not(a) | Expr::Neg(a) | Expr::Call(_, a) => a.collect_roots(out),
            Expr::Bin(_, a, b) => {
                a.collect_roots(out);
                b.collect_roots(out);
            }
            Expr::Null | Expr::Bool(_) | Expr::Num(_) | Expr::Str(_) => {}
        }
    }
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// `.name` (or the first name).
    Key(String),
    /// `[i]`.
    Index(i64),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `||`
    Or,
    /// `&&`
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinOp {
    fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

/// Built-in functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `count(x)`
    Count,
    /// `len(x)`
    Len,
    /// `exists(x)`
    Exists,
}

impl Func {
    fn as_str(self) -> &'static str {
        match self {
            Func::Count => "count",
            Func::Len => "len",
            Func::Exists => "exists",
        }
    }
}

const KEYWORDS: [&str; 4] = ["true", "false", "null", "in"];

/// Whether `s` can be written as a bare path name.
pub fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !KEYWORDS.contains(&s)
}

impl fmt::Display for Expr {
    /// Fully parenthesised, so `parse(e.to_string()) == e`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Null => f.write_str("null"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Str(s) => {
                f.write_str("'")?;
                for c in s.chars() {
                    match c {
                        '\'' => f.write_str("\\'")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("'")
            }
            Expr::List(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            Expr::Path(segs) => {
                for (i, s) in segs.iter().enumerate() {
                    match s {
                        Seg::Key(k) if i == 0 => f.write_str(k)?,
                        Seg::Key(k) => write!(f, ".{k}")?,
                        Seg::Index(n) => write!(f, "[{n}]")?,
                    }
                }
                Ok(())
            }
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::Neg(e) => write!(f, "-{e}"),
            Expr::Bin(op, a, b) => write!(f, "({a} {} {b})", op.as_str()),
            Expr::Call(func, a) => write!(f, "{}({a})", func.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Name(String),
    Sym(&'static str),
    End,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Str(_) => "a string".into(),
        Tok::Name(n) => format!("'{n}'"),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::End => "end of expression".into(),
    }
}

fn lex(src: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: String| ExprError { pos, msg };
    while i < cs.len() {
        let c = cs[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                i += 1;
            }
            if i < cs.len() && (cs[i] == 'e' || cs[i] == 'E') {
                let mut j = i + 1;
                if j < cs.len() && (cs[j] == '+' || cs[j] == '-') {
                    j += 1;
                }
                if j < cs.len() && cs[j].is_ascii_digit() {
                    i = j;
                    while i < cs.len() && cs[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = cs[start..i].iter().collect();
            let n: f64 = text
                .parse()
                .map_err(|_| err(start, format!("invalid number '{text}'")))?;
            out.push((start, Tok::Num(n)));
            continue;
        }
        if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match cs.get(i) {
                    None => return Err(err(start, format!("unterminated string (missing {c})"))),
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = cs
                            .get(i + 1)
                            .ok_or_else(|| err(i, "unterminated escape".into()))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Str(s)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Name(cs[start..i].iter().collect())));
            continue;
        }
        let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
        let sym = match two.as_str() {
            "==" => "==",
            "!=" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            "&&" => "&&",
            "||" => "||",
            _ => match c {
                '<' => "<",
                '>' => ">",
                '!' => "!",
                '+' => "+",
                '-' => "-",
                '*' => "*",
                '/' => "/",
                '(' => "(",
                ')' => ")",
                '[' => "[",
                ']' => "]",
                ',' => ",",
                '.' => ".",
                '=' => return Err(err(i, "expected '==' (comparison), found '='".into())),
                '&' => return Err(err(i, "expected '&&', found '&'".into())),
                '|' => return Err(err(i, "expected '||', found '|'".into())),
                other => return Err(err(i, format!("unexpected character '{other}'"))),
            },
        };
        i += sym.len();
        out.push((start, Tok::Sym(sym)));
    }
    out.push((cs.len(), Tok::End));
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

/// Deep nesting is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 200;

/// Parses an expression (for validation and evaluation).
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let mut p = Parser {
        toks: lex(src)?,
        at: 0,
        depth: 0,
    };
    let e = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        t => Err(p.error(format!("unexpected {} after the expression", describe(t)))),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].1
    }

    fn pos(&self) -> usize {
        self.toks[self.at].0
    }

    fn error(&self, msg: String) -> ExprError {
        ExprError {
            pos: self.pos(),
            msg,
        }
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.at].1.clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn eat(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(s) if *s == sym) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), ExprError> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{sym}', found {}", describe(self.peek()))))
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("expression is nested too deeply".into()));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.and()?;
        while self.eat("||") {
            e = Expr::Bin(BinOp::Or, Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.cmp()?;
        while self.eat("&&") {
            e = Expr::Bin(BinOp::And, Box::new(e), Box::new(self.cmp()?));
        }
        Ok(e)
    }

    fn cmp_op(&self) -> Option<BinOp> {
        Some(match self.peek() {
            Tok::Sym("==") => BinOp::Eq,
            Tok::Sym("!=") => BinOp::Ne,
            Tok::Sym("<") => BinOp::Lt,
            Tok::Sym("<=") => BinOp::Le,
            Tok::Sym(">") => BinOp::Gt,
            Tok::Sym(">=") => BinOp::Ge,
            Tok::Name(n) if n == "in" => BinOp::In,
            _ => return None,
        })
    }

    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let e = self.sum()?;
        let Some(op) = self.cmp_op() else {
            return Ok(e);
        };
        self.bump();
        let r = self.sum()?;
        if self.cmp_op().is_some() {
            return Err(self.error("comparisons cannot be chained; use '&&'".into()));
        }
        Ok(Expr::Bin(op, Box::new(e), Box::new(r)))
    }

    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                _ => return Ok(e),
            };
            self.bump();
            e = Expr::Bin(op, Box::new(e), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                _ => return Ok(e),
            };
            self.bump();
            e = Expr::Bin(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.nested(|p| {
            if p.eat("!") {
                Ok(Expr::Not(Box::new(p.unary()?)))
            } else if p.eat("-") {
                Ok(Expr::Neg(Box::new(p.unary()?)))
            } else {
                p.primary()
            }
        })
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Sym("(") => {
                let e = self.nested(Self::or)?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.nested(Self::or)?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Name(n) => match n.as_str() {
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "null" => Ok(Expr::Null),
                "in" => Err(ExprError {
                    pos,
                    msg: "expected a value, found 'in'".into(),
                }),
                _ if matches!(self.peek(), Tok::Sym("(")) => {
                    let func = match n.as_str() {
                        "count" => Func::Count,
                        "len" => Func::Len,
                        "exists" => Func::Exists,
                        _ => {
                            return Err(ExprError {
                                pos,
                                msg: format!("unknown function '{n}' (count, len, exists)"),
                            });
                        }
                    };
                    self.bump();
                    let arg = self.nested(Self::or)?;
                    self.expect(")")?;
                    Ok(Expr::Call(func, Box::new(arg)))
                }
                _ => self.path(n),
            },
            t => Err(ExprError {
                pos,
                msg: format!("expected a value, found {}", describe(&t)),
            }),
        }
    }

    fn path(&mut self, first: String) -> Result<Expr, ExprError> {
        let mut segs = vec![Seg::Key(first)];
        loop {
            if self.eat(".") {
                let pos = self.pos();
                match self.bump() {
                    Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => segs.push(Seg::Key(n)),
                    _ => {
                        return Err(ExprError {
                            pos,
                            msg: "expected a field name after '.'".into(),
                        });
                    }
                }
            } else if self.eat("[") {
                let neg = self.eat("-");
                let pos = self.pos();
                match self.bump() {
                    Tok::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                        segs.push(Seg::Index(if neg { -(n as i64) } else { n as i64 }))
                    }
                    _ => {
                        return Err(ExprError {
                            pos,
                            msg: "expected an integer index".into(),
                        });
                    }
                }
                self.expect("]")?;
            } else {
                return Ok(Expr::Path(segs));
            }
        }
    }
}

/// A value during evaluation; objects stay borrowed from the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    /// Missing or null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (NaN for `$numberDouble: NaN`).
    Num(f64),
    /// A string (`$oid` and `$date` read as their strings).
    Str(Cow<'a, str>),
    /// A list.
    List(Vec<Val<'a>>),
    /// A JSON object (a label, `metadata`, ...).
    Obj(&'a Object),
}

impl<'a> Val<'a> {
    /// Converts a JSON value, unwrapping Extended JSON scalars.
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(Val::Null, Val::Num),
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            Value::Object(o) => {
                if let Some(s) = ejson::oid_str(v).or_else(|| ejson::date_str(v)) {
                    Val::Str(Cow::Borrowed(s))
                } else if let Some(x) = o
                    .contains_key("$numberDouble")
                    .then(|| ejson::as_f64(v))
                    .flatten()
                {
                    Val::Num(x)
                } else {
                    Val::Obj(o)
                }
            }
        }
    }

    /// Truthiness: `null`, `false`, `0`, NaN, `''`, `[]` are false.
    pub fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Num(n) => *n != 0.0 && !n.is_nan(),
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.is_empty(),
            Val::Obj(_) => true,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            _ => None,
        }
    }
}

/// What expressions read: a label or a sample, parsed ([`Object`]) or read in part from its
/// text (`rows::Row`).
pub trait Doc {
    /// The value of a top-level key; `None` when the document does not have it.
    fn get(&self, key: &str) -> Option<Val<'_>>;

    /// The whole document, for an empty path.
    fn whole(&self) -> Val<'_> {
        Val::Null
    }
}

impl<D: Doc + ?Sized> Doc for &D {
    fn get(&self, key: &str) -> Option<Val<'_>> {
        (**self).get(key)
    }

    fn whole(&self) -> Val<'_> {
        (**self).whole()
    }
}

impl Doc for Object {
    fn get(&self, key: &str) -> Option<Val<'_>> {
        serde_json::Map::get(self, key).map(Val::from_json)
    }

    fn whole(&self) -> Val<'_> {
        Val::Obj(self)
    }
}

/// A name of a document: its value, else the legacy `attributes` dict's `value`.
fn key_of<'a, D: Doc + ?Sized>(doc: &'a D, k: &str) -> Val<'a> {
    doc.get(k).unwrap_or_else(|| match doc.get("attributes") {
        Some(Val::Obj(a)) => a
            .get(k)
            .and_then(|a| a.get("value"))
            .map_or(Val::Null, Val::from_json),
        _ => Val::Null,
    })
}

fn key<'a>(v: &Val<'a>, k: &str) -> Val<'a> {
    match v {
        Val::Obj(o) => key_of(*o, k),
        // A name after a list maps over it.
        Val::List(items) => Val::List(items.iter().map(|i| key(i, k)).collect()),
        _ => Val::Null,
    }
}

fn index<'a>(v: &Val<'a>, i: i64) -> Val<'a> {
    match v {
        Val::List(items) => {
            let n = items.len() as i64;
            let at = if i < 0 { n + i } else { i };
            if (0..n).contains(&at) {
                items[at as usize].clone()
            } else {
                Val::Null
            }
        }
        _ => Val::Null,
    }
}

fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Val::Obj(x), Val::Obj(y)) => x == y,
        _ => false,
    }
}

fn order(op: BinOp, a: &Val, b: &Val) -> bool {
    let ord = match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        _ => None,
    };
    let Some(ord) = ord else { return false };
    match op {
        BinOp::Lt => ord.is_lt(),
        BinOp::Le => ord.is_le(),
        BinOp::Gt => ord.is_gt(),
        BinOp::Ge => ord.is_ge(),
        _ => false,
    }
}

fn count(v: &Val) -> Val<'static> {
    let n = match v {
        Val::Null => 0,
        Val::List(l) => l.len(),
        Val::Str(s) => s.chars().count(),
        Val::Obj(o) => labels::label_objects_of(o).len(),
        Val::Bool(_) | Val::Num(_) => 1,
    };
    Val::Num(n as f64)
}

/// Evaluates an expression on a document (a label, or a sample).
pub fn eval<'a, D: Doc + ?Sized>(e: &'a Expr, doc: &'a D) -> Val<'a> {
    match e {
        Expr::Null => Val::Null,
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Num(n) => Val::Num(*n),
        Expr::Str(s) => Val::Str(Cow::Borrowed(s)),
        Expr::List(items) => Val::List(items.iter().map(|i| eval(i, doc)).collect()),
        Expr::Path(segs) => {
            let (mut v, rest) = match segs.split_first() {
                None => return doc.whole(),
                Some((Seg::Key(k), rest)) if k == "id" && doc.get("id").is_none() => {
                    (key_of(doc, "_id"), rest)
                }
                Some((Seg::Key(k), rest)) => (key_of(doc, k), rest),
                Some((Seg::Index(_), rest)) => (Val::Null, rest),
            };
            for s in rest {
                v = match s {
                    Seg::Key(k) => key(&v, k),
                    Seg::Index(n) => index(&v, *n),
                };
            }
            v
        }
        Expr::Not(a) => Val::Bool(!eval(a, doc).truthy()),
        Expr::Neg(a) => match eval(a, doc) {
            Val::Num(n) => Val::Num(-n),
            _ => Val::Null,
        },
        Expr::Call(f, a) => {
            let v = eval(a, doc);
            match f {
                Func::Count => count(&v),
                Func::Len => match v {
                    Val::List(l) => Val::Num(l.len() as f64),
                    Val::Str(s) => Val::Num(s.chars().count() as f64),
                    _ => Val::Null,
                },
                Func::Exists => Val::Bool(!matches!(v, Val::Null)),
            }
        }
        Expr::Bin(op, a, b) => match op {
            BinOp::And => Val::Bool(eval(a, doc).truthy() && eval(b, doc).truthy()),
            BinOp::Or => Val::Bool(eval(a, doc).truthy() || eval(b, doc).truthy()),
            _ => {
                let (x, y) = (eval(a, doc), eval(b, doc));
                match op {
                    BinOp::Eq => Val::Bool(equal(&x, &y)),
                    BinOp::Ne => Val::Bool(!equal(&x, &y)),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => Val::Bool(order(*op, &x, &y)),
                    BinOp::In => Val::Bool(match (&x, &y) {
                        (_, Val::List(items)) => items.iter().any(|i| equal(&x, i)),
                        (Val::Str(n), Val::Str(h)) => h.contains(n.as_ref()),
                        _ => false,
                    }),
                    _ => arith(*op, x, y),
                }
            }
        },
    }
}

fn arith<'a>(op: BinOp, x: Val<'a>, y: Val<'a>) -> Val<'a> {
    match (op, x, y) {
        (BinOp::Add, Val::Str(a), Val::Str(b)) => Val::Str(Cow::Owned(format!("{a}{b}"))),
        (BinOp::Add, Val::List(mut a), Val::List(b)) => {
            a.extend(b);
            Val::List(a)
        }
        (_, Val::Num(a), Val::Num(b)) => match op {
            BinOp::Add => Val::Num(a + b),
            BinOp::Sub => Val::Num(a - b),
            BinOp::Mul => Val::Num(a * b),
            BinOp::Div if b != 0.0 => Val::Num(a / b),
            _ => Val::Null,
        },
        _ => Val::Null,
    }
}

/// Whether the expression holds for the document.
pub fn matches<D: Doc + ?Sized>(e: &Expr, doc: &D) -> bool {
    eval(e, doc).truthy()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().unwrap().clone()
    }

    fn det() -> Object {
        obj(
            json!({"_id": {"$oid": "6b02535c63110a1e76c075c0"}, "_cls": "Detection", "tags": ["checked"],
                   "label": "car", "bounding_box": [0.1, 0.2, 0.3, 0.4], "confidence": 0.9,
                   "eval": "fp", "occluded": true,
                   "attributes": {"make": {"_cls": "CategoricalAttribute", "value": "vw"}}}),
        )
    }

    fn holds(src: &str, doc: &Object) -> bool {
        matches(
            &parse(src).unwrap_or_else(|e| panic!("{}", e.render(src))),
            doc,
        )
    }

    #[test]
    fn shape_reads_are_set_and_count_only() {
        let shape = |src: &str| parse(src).unwrap().reads_only_shape("gt");
        for src in [
            "gt",
            "count(gt) > 2",
            "exists(gt) && n > 1",
            "count(gt) * 10 - n / 7",
            "n",
        ] {
            assert!(shape(src), "{src}");
        }
        for src in [
            "gt.detections",
            "count(gt.detections)",
            "gt == null",
            "!gt",
            "len(gt)",
            "[gt]",
        ] {
            assert!(!shape(src), "{src}");
        }
    }

    #[test]
    fn label_predicates() {
        let d = det();
        assert!(holds("confidence > 0.8 && eval == 'fp'", &d));
        assert!(holds("label in ['car', \"bus\"]", &d));
        assert!(holds("'checked' in tags", &d));
        assert!(holds("bounding_box[2] * bounding_box[3] > 0.1", &d));
        assert!(holds("bounding_box[-1] == 0.4", &d));
        assert!(holds("occluded && !(label == 'bus')", &d));
        assert!(holds("make == 'vw'", &d), "legacy attributes dict");
        assert!(holds("id == '6b02535c63110a1e76c075c0'", &d));
        assert!(holds(
            "len(tags) == 1 && exists(confidence) && !exists(missing)",
            &d
        ));
        assert!(holds(
            "(1 + 2) * 3 == 9 && 7 / 2 == 3.5 && -confidence < 0",
            &d
        ));
        assert!(holds("'ar' in label && label + 's' == 'cars'", &d));
        assert!(holds("1e3 == 1000 && .5 == 0.5", &d));
    }

    #[test]
    fn null_semantics() {
        let d = det();
        for src in [
            "missing > 0",
            "missing < 0",
            "missing >= 0",
            "missing <= 0",
            "missing == 0",
            "'x' in missing",
        ] {
            assert!(!holds(src, &d), "{src}");
        }
        assert!(holds("missing == null", &d));
        assert!(holds("missing != 0", &d));
        assert!(!holds("label > 3", &d), "mixed types do not order");
        assert!(matches!(eval(&parse("1 / 0").unwrap(), &d), Val::Null));
        assert!(matches!(
            eval(&parse("missing + 1").unwrap(), &d),
            Val::Null
        ));
    }

    #[test]
    fn sample_level_counts() {
        let s = obj(
            json!({"_id": {"$oid": "6b02536263110a1e76c075f7"}, "tags": ["a", "b"],
            "metadata": {"_cls": "ImageMetadata", "width": 64},
            "predictions": {"_cls": "Detections", "detections": [{"label": "car"}, {"label": "bus"}]},
            "cls": {"_cls": "Classification", "label": "cat"}, "none": null}),
        );
        let num = |src: &str| eval(&parse(src).unwrap(), &s).as_f64();
        assert_eq!(num("count(predictions)"), Some(2.0));
        assert_eq!(num("count(cls)"), Some(1.0));
        assert_eq!(num("count(none)"), Some(0.0));
        assert_eq!(num("count(tags)"), Some(2.0));
        assert_eq!(num("metadata.width"), Some(64.0));
        assert!(holds("'bus' in predictions.detections.label", &s));
    }

    #[test]
    fn root_fields_are_collected_once() {
        let e = parse("count(gt) > 2 && metadata.width > 3 && id != null && gt.detections[0].label in [x, 'y']").unwrap();
        assert_eq!(e.root_fields(), ["gt", "metadata", "id", "_id", "x"]);
    }

    #[test]
    fn errors_carry_positions() {
        let e = parse("(label == 'car'").unwrap_err();
        assert_eq!(
            e,
            ExprError {
                pos: 15,
                msg: "expected ')', found end of expression".into()
            }
        );
        assert_eq!(e.to_string(), "expected ')', found end of expression at 15");
        assert_eq!(
            e.render("(label == 'car'"),
            "(label == 'car'\n               ^ expected ')', found end of expression"
        );
        assert_eq!(parse("label = 'car'").unwrap_err().pos, 6);
        assert_eq!(
            parse("label == 'car").unwrap_err().msg,
            "unterminated string (missing ')"
        );
        assert_eq!(parse("a < b < c").unwrap_err().pos, 6);
        assert_eq!(
            parse("foo(x)").unwrap_err().msg,
            "unknown function 'foo' (count, len, exists)"
        );
        assert_eq!(parse("a.").unwrap_err().pos, 2);
        assert_eq!(
            parse("a b").unwrap_err().msg,
            "unexpected 'b' after the expression"
        );
        assert_eq!(parse("").unwrap_err().pos, 0);
        assert!(
            parse(&"(".repeat(10_000)).is_err(),
            "deep nesting is an error, not a crash"
        );
    }

    fn arb_name() -> impl Strategy<Value = String> {
        "[a-z_][a-z0-9_]{0,5}".prop_filter("keyword", |s| is_name(s))
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            Just(Expr::Null),
            any::<bool>().prop_map(Expr::Bool),
            (0.0f64..1e9).prop_map(Expr::Num),
            (0u32..100).prop_map(|n| Expr::Num(f64::from(n))),
            "[a-z '\"\\\\]{0,6}".prop_map(Expr::Str),
            (
                arb_name(),
                proptest::collection::vec(
                    prop_oneof![
                        arb_name().prop_map(Seg::Key),
                        (-3i64..5).prop_map(Seg::Index)
                    ],
                    0..3
                )
            )
                .prop_map(|(n, mut rest)| {
                    rest.insert(0, Seg::Key(n));
                    Expr::Path(rest)
                }),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            let ops = prop_oneof![
                Just(BinOp::Or),
                Just(BinOp::And),
                Just(BinOp::Eq),
                Just(BinOp::Ne),
                Just(BinOp::Lt),
                Just(BinOp::Le),
                Just(BinOp::Gt),
                Just(BinOp::Ge),
                Just(BinOp::In),
                Just(BinOp::Add),
                Just(BinOp::Sub),
                Just(BinOp::Mul),
                Just(BinOp::Div)
            ];
            prop_oneof![
                (ops, inner.clone(), inner.clone()).prop_map(|(o, a, b)| Expr::Bin(
                    o,
                    Box::new(a),
                    Box::new(b)
                )),
                inner.clone().prop_map(|a| Expr::Not(Box::new(a))),
                inner.clone().prop_map(|a| Expr::Neg(Box::new(a))),
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Expr::List),
                (
                    prop_oneof![Just(Func::Count), Just(Func::Len), Just(Func::Exists)],
                    inner
                )
                    .prop_map(|(f, a)| Expr::Call(f, Box::new(a))),
            ]
        })
    }

    fn arb_doc() -> impl Strategy<Value = Object> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i32..5).prop_map(Value::from),
            "[ab]{0,2}".prop_map(Value::from),
        ];
        proptest::collection::vec((prop_oneof![Just("a"), Just("b"), Just("c")], scalar), 0..4)
            .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_same_tree(e in arb_expr()) {
            let printed = e.to_string();
            let back = parse(&printed).map_err(|err| TestCaseError::fail(err.render(&printed)))?;
            prop_assert_eq!(back, e);
        }

        #[test]
        fn parsing_never_panics_and_errors_point_inside(src in "\\PC{0,40}") {
            if let Err(e) = parse(&src) {
                prop_assert!(e.pos <= src.chars().count(), "{} > len of {:?}", e.pos, src);
            }
        }

        #[test]
        fn parsing_operator_soup_never_panics(src in "[a-c0-9 ()\\[\\]!=<>&|+*/.,'-]{0,30}") {
            if let Err(e) = parse(&src) {
                prop_assert!(e.pos <= src.chars().count());
            }
        }

        #[test]
        fn negation_laws(a in arb_expr(), b in arb_expr(), doc in arb_doc()) {
            let not = |e: Expr| Expr::Not(Box::new(e));
            let bin = |o, x: Expr, y: Expr| Expr::Bin(o, Box::new(x), Box::new(y));
            // Parenthesising does not change the meaning: !(a) == !a.
            let src = a.to_string();
            prop_assert_eq!(matches(&parse(&format!("!({src})")).unwrap(), &doc), matches(&parse(&format!("!{src}")).unwrap(), &doc));
            prop_assert_eq!(matches(&not(not(a.clone())), &doc), matches(&a, &doc));
            // De Morgan.
            prop_assert_eq!(
                matches(&not(bin(BinOp::And, a.clone(), b.clone())), &doc),
                matches(&bin(BinOp::Or, not(a.clone()), not(b.clone())), &doc)
            );
            // == and != are complements.
            prop_assert_eq!(matches(&bin(BinOp::Eq, a.clone(), b.clone()), &doc), !matches(&bin(BinOp::Ne, a, b), &doc));
        }
    }
}
