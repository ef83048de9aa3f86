//! Writes a small synthetic image dataset in FiftyOne's `FiftyOneDataset` directory format:
//! PNGs with coloured boxes, and ground truth for them (`ground_truth` detections, a `scene`
//! classification, `regions` polygons).
//!
//!     cargo run --example make-demo-dataset -- OUT_DIR [N=24] [WIDTH=160] [HEIGHT=120]
//!
//! Deterministic: the same arguments write byte-identical files (the committed
//! `datasets/demo/` is `OUT_DIR=datasets/demo` with the defaults).

use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::Path;

/// Detection classes and the colour their boxes are drawn in.
const CLASSES: [(&str, [u8; 3]); 3] = [
    ("car", [220, 40, 40]),
    ("person", [40, 160, 40]),
    ("bike", [40, 70, 220]),
];
const SCENES: [&str; 3] = ["street", "park", "parking"];
const REGIONS: [&str; 2] = ["road", "grass"];
/// Every document gets this creation date, so regenerating changes nothing.
const DATE: &str = "2026-11-22T00:00:00.000Z";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: make-demo-dataset OUT_DIR [N=24] [WIDTH=160] [HEIGHT=120]");
        std::process::exit(2);
    };
    let arg = |i: usize, default: u32| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (n, w, h) = (arg(1, 24), arg(2, 160), arg(3, 120));
    if let Err(e) = write_dataset(Path::new(out), n, w, h) {
        eprintln!("make-demo-dataset: {e}");
        std::process::exit(1);
    }
    eprintln!("wrote {n} samples to {out}");
}

/// A tiny deterministic generator (xorshift64*); no dependency needed for demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [lo, hi), rounded to 3 decimals so the JSON stays short.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo + u * (hi - lo)) * 1000.0).round() / 1000.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Sequential ObjectIds with a fixed timestamp: valid, unique and reproducible.
struct Ids(u32);

impl Ids {
    fn next(&mut self) -> Value {
        self.0 += 1;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&0x6b00_0000u32.to_be_bytes());
        b[4..8].copy_from_slice(&0x0dec_0000u32.to_be_bytes());
        b[8..].copy_from_slice(&self.0.to_be_bytes());
        json!({"$oid": ObjectId::from_bytes(b).to_string()})
    }
}

/// Writes `n` images of `w`x`h` pixels and their samples into `out`.
pub fn write_dataset(out: &Path, n: u32, w: u32, h: u32) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out.join("data"))?;
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let mut ids = Ids(0);
    let dataset_id = ids.next();
    let mut samples = Vec::new();
    for i in 0..n {
        let file = format!("data/{i:06}.png");
        let sample = sample(&mut rng, &mut ids, &dataset_id, &file);
        let png = render(&sample, w, h);
        std::fs::write(out.join(&file), &png)?;
        let mut sample = sample;
        sample["metadata"] = json!({"_cls": "ImageMetadata", "size_bytes": png.len(),
            "mime_type": "image/png", "width": w, "height": h, "num_channels": 3});
        samples.push(sample.as_object().cloned().unwrap_or_default());
    }
    let mut ds = Dataset::from_docs(out, metadata(&dataset_id), samples, None)?;
    for (field, cls) in [
        ("ground_truth", "Detections"),
        ("scene", "Classification"),
        ("regions", "Polylines"),
    ] {
        ds.declare_field(&field.into(), &FieldType::Label(cls.into()))?;
    }
    fix_dates(ds.metadata_mut());
    ds.save()?;
    Ok(())
}

/// One sample: 1-4 boxes, a scene, 1-2 polygons.
fn sample(rng: &mut Rng, ids: &mut Ids, dataset: &Value, file: &str) -> Value {
    let detections: Vec<Value> = (0..1 + rng.below(4))
        .map(|_| {
            let (bw, bh) = (rng.range(0.12, 0.3), rng.range(0.12, 0.3));
            let (x, y) = (rng.range(0.0, 1.0 - bw), rng.range(0.0, 1.0 - bh));
            json!({"_id": ids.next(), "_cls": "Detection", "attributes": {}, "tags": [],
                "label": CLASSES[rng.below(CLASSES.len())].0, "bounding_box": [x, y, bw, bh]})
        })
        .collect();
    let polylines: Vec<Value> = (0..1 + rng.below(2))
        .map(|_| {
            let (cx, cy) = (rng.range(0.2, 0.8), rng.range(0.2, 0.8));
            let points: Vec<Value> = [(-0.15, -0.1), (0.15, -0.12), (0.1, 0.15), (-0.12, 0.1)]
                .iter()
                .map(|(dx, dy)| json!([round3(cx + dx), round3(cy + dy)]))
                .collect();
            json!({"_id": ids.next(), "_cls": "Polyline", "attributes": {}, "tags": [],
                "label": REGIONS[rng.below(REGIONS.len())], "points": [points],
                "closed": true, "filled": true})
        })
        .collect();
    json!({
        "_id": ids.next(),
        "filepath": file,
        "tags": [],
        "_media_type": "image",
        "_rand": rng.range(0.0, 1.0),
        "ground_truth": {"_cls": "Detections", "detections": detections},
        "scene": {"_id": ids.next(), "_cls": "Classification", "tags": [],
            "label": SCENES[rng.below(SCENES.len())]},
        "regions": {"_cls": "Polylines", "polylines": polylines},
        "_dataset_id": dataset,
        "created_at": {"$date": DATE},
        "last_modified_at": {"$date": DATE},
    })
}

fn round3(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 1000.0).round() / 1000.0
}

/// metadata.json as FiftyOne 1.22.1 writes it, with the built-in sample fields.
fn metadata(id: &Value) -> Map<String, Value> {
    let field = |name: &str, ftype: &str, sub: Value, emb: Value| {
        json!({"name": name, "ftype": format!("fiftyone.core.fields.{ftype}"),
            "embedded_doc_type": emb, "subfield": sub, "fields": [], "db_field": name,
            "description": null, "info": null, "read_only": false,
            "created_at": {"$date": DATE}})
    };
    let mut id_field = field("id", "ObjectIdField", Value::Null, Value::Null);
    id_field["db_field"] = json!("_id");
    let v = json!({
        "_id": id, "name": "demo", "slug": "demo", "version": "1.22.1",
        "created_at": {"$date": DATE}, "last_modified_at": {"$date": DATE},
        "media_type": "image", "persistent": true, "tags": [], "info": {},
        "classes": {}, "default_classes": [], "mask_targets": {}, "default_mask_targets": {},
        "skeletons": {},
        "sample_fields": [
            field("_media_type", "StringField", Value::Null, Value::Null),
            field("tags", "ListField", json!("fiftyone.core.fields.StringField"), Value::Null),
            field("last_modified_at", "DateTimeField", Value::Null, Value::Null),
            field("created_at", "DateTimeField", Value::Null, Value::Null),
            id_field,
            field("filepath", "StringField", Value::Null, Value::Null),
            field("_rand", "FloatField", Value::Null, Value::Null),
            field("metadata", "EmbeddedDocumentField", Value::Null,
                json!("fiftyone.core.metadata.ImageMetadata")),
            field("_dataset_id", "ObjectIdField", Value::Null, Value::Null),
        ],
        "frame_fields": [], "saved_views": [], "workspaces": [], "annotation_runs": {},
        "brain_methods": {}, "evaluations": {}, "runs": {},
    });
    v.as_object().cloned().unwrap_or_default()
}

/// Field docs declared through the library carry the current time: pin them.
fn fix_dates(v: &mut Map<String, Value>) {
    for (k, x) in v.iter_mut() {
        match x {
            Value::Object(m) if k == "created_at" => {
                m.insert("$date".into(), json!(DATE));
            }
            Value::Object(m) => fix_dates(m),
            Value::Array(a) => a.iter_mut().for_each(|e| {
                if let Value::Object(m) = e {
                    fix_dates(m)
                }
            }),
            _ => {}
        }
    }
}

/// The image: a grey background, polygons' bounding areas in a faint tint, boxes as outlines
/// in their class colour.
fn render(sample: &Value, w: u32, h: u32) -> Vec<u8> {
    let mut px = vec![[200u8, 200, 200]; (w * h) as usize];
    let mut fill = |x0: f64, y0: f64, x1: f64, y1: f64, c: [u8; 3], outline: bool| {
        let (x0, x1) = ((x0 * w as f64) as u32, ((x1 * w as f64) as u32).min(w - 1));
        let (y0, y1) = ((y0 * h as f64) as u32, ((y1 * h as f64) as u32).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let edge = x < x0 + 2 || x + 2 > x1 || y < y0 + 2 || y + 2 > y1;
                if !outline || edge {
                    px[(y * w + x) as usize] = c;
                }
            }
        }
    };
    for p in sample["regions"]["polylines"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let pts = p["points"][0].as_array().cloned().unwrap_or_default();
        let xs = pts.iter().filter_map(|q| q[0].as_f64());
        let ys = pts.iter().filter_map(|q| q[1].as_f64());
        let (x0, x1) = xs.fold((1f64, 0f64), |(a, b), x| (a.min(x), b.max(x)));
        let (y0, y1) = ys.fold((1f64, 0f64), |(a, b), y| (a.min(y), b.max(y)));
        let c = if p["label"] == "road" {
            [150, 150, 160]
        } else {
            [170, 210, 160]
        };
        fill(x0, y0, x1, y1, c, false);
    }
    for d in sample["ground_truth"]["detections"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let b: Vec<f64> = d["bounding_box"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect();
        let c = CLASSES
            .iter()
            .find(|(l, _)| d["label"] == *l)
            .map_or([0; 3], |(_, c)| *c);
        fill(b[0], b[1], b[0] + b[2], b[1] + b[3], c, true);
    }
    png(&px, w, h)
}

/// A minimal RGB8 PNG: IHDR, one zlib IDAT, IEND.
fn png(px: &[[u8; 3]], w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(px.len() * 3 + h as usize);
    for row in px.chunks(w as usize) {
        raw.push(0); // filter: none
        raw.extend(row.iter().flatten());
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&raw).expect("in-memory write");
    let idat = z.finish().expect("in-memory write");
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data.iter());
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
