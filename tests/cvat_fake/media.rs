//! Media helpers: probing uploaded images and mp4 videos, and writing small PNGs.

use flate2::{Compression, write::ZlibEncoder};
use std::io::Write;

/// What an uploaded file turned out to be.
pub enum Media {
    Image {
        width: u32,
        height: u32,
    },
    Video {
        width: u32,
        height: u32,
        frames: u32,
    },
    /// An image extension whose bytes no decoder accepts (PIL's UnidentifiedImageError).
    BrokenImage,
    /// Not a media file at all; the server skips it.
    Other,
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"];
const VIDEO_EXTS: &[&str] = &["mp4", "avi", "mov", "mkv", "webm"];

/// Classifies a file by its extension and, for media, by its header.
pub fn probe(name: &str, bytes: &[u8]) -> Media {
    let ext = name.rsplit('.').next().unwrap_or_default().to_lowercase();
    if VIDEO_EXTS.contains(&ext.as_str()) {
        return match probe_mp4(bytes) {
            Some((width, height, frames)) => Media::Video {
                width,
                height,
                frames,
            },
            None => Media::BrokenImage,
        };
    }
    if !IMAGE_EXTS.contains(&ext.as_str()) {
        return Media::Other;
    }
    match imagesize::blob_size(bytes) {
        Ok(s) if s.width > 0 && s.height > 0 && valid_png_if_png(bytes) => Media::Image {
            width: s.width as u32,
            height: s.height as u32,
        },
        _ => Media::BrokenImage,
    }
}

/// A PNG must at least carry its IHDR and IEND chunks to be decodable.
fn valid_png_if_png(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"\x89PNG") || bytes.windows(4).any(|w| w == b"IEND")
}

/// Width, height and sample count of the first video track of an mp4.
fn probe_mp4(b: &[u8]) -> Option<(u32, u32, u32)> {
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?)) };
    let mut dims = None;
    let mut at = 0;
    // tkhd (version 0), counted from its type: 4 type, 4 flags, 20 times/ids, 8 reserved,
    // 8 layer..volume, 36 matrix, then 16.16 width and height.
    while let Some(i) = find_from(b, b"tkhd", at) {
        let (w, h) = (u32_at(i + 80)? >> 16, u32_at(i + 84)? >> 16);
        if w > 0 && h > 0 {
            dims = Some((w, h));
            break;
        }
        at = i + 4;
    }
    let stsz = find_from(b, b"stsz", 0)?;
    let frames = u32_at(stsz + 12)?;
    let (w, h) = dims?;
    Some((w, h, frames))
}

fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A valid single-colour RGB PNG of the given size (small, so it fits recorded file sizes).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let row: Vec<u8> = std::iter::once(0)
        .chain(std::iter::repeat_n([90, 140, 200], width as usize).flatten())
        .collect();
    let raw = row.repeat(height as usize);
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    z.write_all(&raw).expect("zlib");
    let idat = z.finish().expect("zlib");
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
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

/// The content type the server gives an original frame, from the file name.
pub fn content_type(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_lowercase()
        .as_str()
    {
        "jpg" | "jpeg" => "image/jpeg",
        "bmp" => "image/bmp",
        "gif" => "image/gif",
        _ => "image/png",
    }
}
