//! MongoDB Extended JSON helpers over `serde_json::Value`: the encoding FiftyOne's exports use
//! for ids (`$oid`), dates (`$date`), non-finite floats (`$numberDouble`) and bytes (`$binary`).
//! Ids, dates and binaries are `bson`'s, the crate the `mongodb` store uses, so both stores
//! share one representation.

use std::fmt;
use std::str::FromStr;

use bson::oid;
use bson::spec::BinarySubtype;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A MongoDB ObjectId (`bson`'s): 12 bytes, written as 24 lowercase hex digits, and serialized
/// as that hex string (as run records and plans store it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(oid::ObjectId);

/// A string that is not 24 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ObjectId {0:?}: expected 24 hexadecimal digits")]
pub struct ObjectIdError(pub String);

impl ObjectId {
    /// The id made of these 12 bytes.
    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        ObjectId(oid::ObjectId::from_bytes(bytes))
    }

    /// The 12 raw bytes.
    pub const fn bytes(&self) -> [u8; 12] {
        self.0.bytes()
    }

    /// Parses 24 hex digits (either case).
    pub fn parse(s: &str) -> Result<Self, ObjectIdError> {
        oid::ObjectId::parse_str(s)
            .map(ObjectId)
            .map_err(|_| ObjectIdError(s.to_owned()))
    }

    /// A fresh id, as BSON drivers make them: 4-byte big-endian seconds since the epoch, a
    /// 5-byte per-process random value, a 3-byte counter starting at a random value.
    pub fn new() -> Self {
        ObjectId(oid::ObjectId::new())
    }

    /// A deterministic id: the first 12 bytes of SHA-256 over the length-prefixed parts, so the
    /// same inputs (e.g. run key + backend object id) always give the same id.
    pub fn derive(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        h.update(b"annoform-objectid-v1");
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        let digest = h.finalize();
        let mut b = [0u8; 12];
        b.copy_from_slice(&digest[..12]);
        ObjectId::from_bytes(b)
    }

    /// Seconds since the epoch encoded in the first 4 bytes.
    pub fn timestamp(&self) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// `{"$oid": "<hex>"}`.
    pub fn to_ejson(&self) -> Value {
        bson::Bson::ObjectId(self.0).into_relaxed_extjson()
    }

    /// Reads `{"$oid": "<hex>"}` (or a bare hex string, which some tools write).
    pub fn from_ejson(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => ObjectId::parse(s).ok(),
            _ => oid_str(v).and_then(|s| ObjectId::parse(s).ok()),
        }
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        ObjectId::new()
    }
}

impl From<oid::ObjectId> for ObjectId {
    fn from(id: oid::ObjectId) -> Self {
        ObjectId(id)
    }
}

impl From<ObjectId> for oid::ObjectId {
    fn from(id: ObjectId) -> Self {
        id.0
    }
}

impl From<ObjectId> for bson::Bson {
    fn from(id: ObjectId) -> Self {
        bson::Bson::ObjectId(id.0)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = ObjectIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::parse(s)
    }
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A hasher for maps keyed by ObjectId: ids are already well-mixed bytes, so a multiply per
/// 8 bytes does instead of SipHash (loading hashes every label id of a dataset).
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(buf))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` keyed by ObjectId with [`IdHasher`].
pub type IdMap<V> = std::collections::HashMap<ObjectId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A `HashSet` of ObjectIds with [`IdHasher`].
pub type IdSet = std::collections::HashSet<ObjectId, std::hash::BuildHasherDefault<IdHasher>>;

/// The hex string of `{"$oid": "<hex>"}`.
pub fn oid_str(v: &Value) -> Option<&str> {
    single_key(v, "$oid")?.as_str()
}

/// The ISO-8601 string of `{"$date": "..."}`.
pub fn date_str(v: &Value) -> Option<&str> {
    single_key(v, "$date")?.as_str()
}

/// `{"$date": "<iso>"}` for the current time, millisecond precision, as FiftyOne writes it.
pub fn date_now() -> Value {
    let ms = bson::DateTime::now().timestamp_millis();
    json!({ "$date": iso8601_millis(ms) })
}

/// Formats milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`, always with 3 digits
/// of milliseconds as FiftyOne writes dates (`bson`'s RFC 3339 drops trailing zeros).
pub fn iso8601_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// A number, reading `{"$numberDouble": "NaN" | "Infinity" | "-Infinity" | "<float>"}` too.
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => match single_key(v, "$numberDouble")?.as_str()? {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
    }
}

/// JSON text with the non-finite literals Python's `json` writes and FiftyOne reads (`NaN`,
/// `Infinity`, `-Infinity`) rewritten as `{"$numberDouble": ...}`, which means the same to
/// FiftyOne; `None` when the text has none (strings are left alone).
pub fn finite_json(text: &str) -> Option<FiniteJson> {
    // Fast path: most files never spell either word.
    if !text.contains("NaN") && !text.contains("Infinity") {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = FiniteJson {
        text: String::with_capacity(text.len() + 64),
        shifts: Vec::new(),
    };
    let (mut copied, mut i, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let literal = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|l| bytes[i..].starts_with(l.as_bytes()));
        match (b, literal) {
            (b'"', _) => {
                in_string = true;
                i += 1;
            }
            (_, Some(l)) => {
                out.text.push_str(&text[copied..i]);
                out.text.push_str(&format!(r#"{{"$numberDouble":"{l}"}}"#));
                i += l.len();
                copied = i;
                out.shifts
                    .push((out.text.len(), out.text.len() as isize - i as isize));
            }
            _ => i += 1,
        }
    }
    if out.shifts.is_empty() {
        return None;
    }
    out.text.push_str(&text[copied..]);
    Some(out)
}

/// JSON text rewritten by [`finite_json`], with the way back to positions in the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiniteJson {
    pub text: String,
    /// (end of a rewritten literal in `text`, `text` position minus original position from
    /// there on), ascending.
    shifts: Vec<(usize, isize)>,
}

impl FiniteJson {
    /// The original position of a position in the rewritten text that is not inside a
    /// rewritten literal.
    pub fn original(&self, at: usize) -> usize {
        let n = self.shifts.partition_point(|(end, _)| *end <= at);
        let shift = n.checked_sub(1).map_or(0, |k| self.shifts[k].1);
        (at as isize - shift) as usize
    }
}

/// A float as JSON: plain when finite, `{"$numberDouble": ...}` for NaN and infinities (JSON
/// has no spelling for them; this is what FiftyOne writes for missing keypoints).
pub fn from_f64(x: f64) -> Value {
    if x.is_nan() {
        json!({ "$numberDouble": "NaN" })
    } else if x == f64::INFINITY {
        json!({ "$numberDouble": "Infinity" })
    } else if x == f64::NEG_INFINITY {
        json!({ "$numberDouble": "-Infinity" })
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Binary data with its BSON subtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// BSON subtype (0 = generic, what FiftyOne uses for arrays).
    pub subtype: u8,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A malformed `$binary` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// Not `{"$binary": {"base64", "subType"}}`.
    #[error("expected {{\"$binary\": {{\"base64\": ..., \"subType\": ...}}}}")]
    Shape,
    /// Bad base64 text.
    #[error("invalid base64 in $binary: {0}")]
    Base64(String),
    /// Bad subtype text.
    #[error("invalid $binary subType {0:?}")]
    SubType(String),
}

impl Binary {
    /// Reads `{"$binary": {"base64": "...", "subType": "00"}}` (and the legacy
    /// `{"$binary": "...", "$type": "00"}` form).
    pub fn from_ejson(v: &Value) -> Result<Binary, BinaryError> {
        let obj = v.as_object().ok_or(BinaryError::Shape)?;
        let inner = obj.get("$binary").ok_or(BinaryError::Shape)?;
        let (b64, st) = match inner {
            Value::Object(m) => (m.get("base64"), m.get("subType")),
            Value::String(_) => (Some(inner), obj.get("$type")),
            _ => return Err(BinaryError::Shape),
        };
        let b64 = b64.and_then(Value::as_str).ok_or(BinaryError::Shape)?;
        let st = st.and_then(Value::as_str).ok_or(BinaryError::Shape)?;
        let subtype =
            u8::from_str_radix(st, 16).map_err(|_| BinaryError::SubType(st.to_owned()))?;
        let bytes = bson::Binary::from_base64(b64, BinarySubtype::from(subtype))
            .map_err(|e| BinaryError::Base64(e.to_string()))?
            .bytes;
        Ok(Binary { subtype, bytes })
    }

    /// `{"$binary": {"base64": "...", "subType": "00"}}` (`bson`'s relaxed Extended JSON).
    pub fn to_ejson(&self) -> Value {
        bson::Bson::Binary(bson::Binary {
            subtype: BinarySubtype::from(self.subtype),
            bytes: self.bytes.clone(),
        })
        .into_relaxed_extjson()
    }

    /// Whether `v` looks like a `$binary` value.
    pub fn is_binary(v: &Value) -> bool {
        v.as_object().is_some_and(|m| m.contains_key("$binary"))
    }
}

fn single_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let m: &Map<String, Value> = v.as_object()?;
    if m.len() == 1 { m.get(key) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn object_id_parses_and_prints() {
        let id = ObjectId::parse("6B02536263110a1e76c075f7").unwrap();
        assert_eq!(id.to_string(), "6b02536263110a1e76c075f7");
        assert_eq!(id.timestamp(), 0x6b025362);
        assert!(ObjectId::parse("6b02536263110a1e76c075f").is_err());
        assert!(ObjectId::parse("6b02536263110a1e76c075fz").is_err());
        assert!(ObjectId::parse("").is_err());
    }

    #[test]
    fn ids_are_bsons_and_serialize_as_hex() {
        let hex = "6b02536263110a1e76c075f7";
        let id = ObjectId::parse(hex).unwrap();
        let b: oid::ObjectId = id.into();
        assert_eq!(b.to_hex(), hex);
        assert_eq!(ObjectId::from(b), id);
        assert_eq!(bson::Bson::from(id), bson::Bson::ObjectId(b));
        assert_eq!(id.to_ejson(), json!({"$oid": hex}));
        assert_eq!(serde_json::to_value(id).unwrap(), json!(hex));
        assert_eq!(serde_json::from_value::<ObjectId>(json!(hex)).unwrap(), id);
        assert_eq!(ObjectId::from_bytes(id.bytes()), id);
    }

    #[test]
    fn dates_now_have_three_digit_milliseconds() {
        let now = date_now();
        let s = date_str(&now).unwrap();
        assert_eq!((s.len(), &s[19..20], &s[23..]), (24, ".", "Z"), "{s}");
        assert_eq!(
            iso8601_millis(1_700_000_000_100),
            "2023-11-14T22:13:20.100Z"
        );
    }

    #[test]
    fn new_ids_are_unique_and_carry_the_time() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert_ne!(a, b);
        assert_eq!(a.bytes()[4..9], b.bytes()[4..9], "same process bytes");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as u32;
        assert!(now.abs_diff(a.timestamp()) < 5);
        assert_eq!(ObjectId::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn derived_ids_are_deterministic_and_separate_parts() {
        let a = ObjectId::derive(&[b"run", b"42"]);
        assert_eq!(a, ObjectId::derive(&[b"run", b"42"]));
        assert_ne!(a, ObjectId::derive(&[b"run4", b"2"]));
        assert_eq!(a.to_string().len(), 24);
        // Pinned so ids stay stable across releases (ids are persisted in datasets).
        // Computed independently: sha256("annoform-objectid-v1" + be64(3) "run" + be64(2) "42").
        assert_eq!(a.to_string(), "f1d7cf0d35b23388eb454631");
    }

    #[test]
    fn python_non_finite_literals_read_as_extended_json() {
        assert_eq!(finite_json(r#"{"a": [1, 2.5e3], "s": "NaN"}"#), None);
        let text = r#"{"a": NaN, "s": "x\" NaN Infinity", "b": [-Infinity, Infinity], "c": 1}"#;
        let f = finite_json(text).expect("rewritten");
        let v: Value = serde_json::from_str(&f.text).expect("valid JSON");
        assert!(as_f64(&v["a"]).unwrap().is_nan());
        assert_eq!(v["s"], json!("x\" NaN Infinity"));
        assert_eq!(as_f64(&v["b"][0]), Some(f64::NEG_INFINITY));
        assert_eq!(as_f64(&v["b"][1]), Some(f64::INFINITY));
        // Positions after each literal map back to the original text.
        for key in ["\"s\"", "\"b\"", "\"c\"", "}"] {
            let at = f.text.rfind(key).unwrap();
            assert_eq!(f.original(at), text.rfind(key).unwrap(), "{key}");
        }
        assert_eq!(f.original(0), 0);
    }

    #[test]
    fn ejson_wrappers() {
        let v = json!({"$oid": "6b02536263110a1e76c075f7"});
        assert_eq!(ObjectId::from_ejson(&v).unwrap().to_ejson(), v);
        assert_eq!(
            date_str(&json!({"$date": "2026-11-22T02:28:50.402Z"})),
            Some("2026-11-22T02:28:50.402Z")
        );
        assert!(as_f64(&json!({"$numberDouble": "NaN"})).unwrap().is_nan());
        assert_eq!(
            as_f64(&json!({"$numberDouble": "-Infinity"})),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(as_f64(&json!(0.5)), Some(0.5));
        assert_eq!(from_f64(f64::NAN), json!({"$numberDouble": "NaN"}));
        assert_eq!(
            from_f64(f64::INFINITY),
            json!({"$numberDouble": "Infinity"})
        );
        assert_eq!(from_f64(1.5), json!(1.5));
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(1_795_314_530_402),
            "2026-11-22T02:28:50.402Z"
        );
        assert_eq!(iso8601_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn binary_round_trip_and_errors() {
        let v = json!({"$binary": {"base64": "AAEC", "subType": "00"}});
        let b = Binary::from_ejson(&v).unwrap();
        assert_eq!(b.bytes, vec![0, 1, 2]);
        assert_eq!(b.to_ejson(), v);
        assert_eq!(
            Binary::from_ejson(&json!({"$binary": {"base64": "!!", "subType": "00"}})),
            Err(BinaryError::Base64("Invalid symbol 33, offset 0.".into()))
        );
        assert_eq!(Binary::from_ejson(&json!(3)), Err(BinaryError::Shape));
    }

    proptest! {
        #[test]
        fn object_id_hex_round_trip(bytes in proptest::array::uniform12(any::<u8>())) {
            let id = ObjectId::from_bytes(bytes);
            prop_assert_eq!(ObjectId::parse(&id.to_string()).unwrap(), id);
        }

        #[test]
        fn float_round_trip(x in any::<f64>()) {
            let back = as_f64(&from_f64(x)).unwrap();
            prop_assert!(back == x || (x.is_nan() && back.is_nan()));
        }
    }
}
