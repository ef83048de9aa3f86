//! A zip archive read front to back as it downloads, one entry at a time (Darwin exports are
//! one JSON file per item: a large dataset's export is never held whole, in memory or on
//! disk). Only what exports use is read: stored and deflated entries, with or without a data
//! descriptor after a deflated entry; the central directory at the end is not needed.

use flate2::bufread::DeflateDecoder;
use std::io::{BufRead, Read};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
/// Flag bit 3: sizes and CRC follow the data instead of preceding it.
const HAS_DESCRIPTOR: u16 = 1 << 3;
/// Largest entry read (an item's Darwin JSON is kilobytes; more is not an export).
const MAX_ENTRY: u64 = 256 * 1024 * 1024;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Calls `entry(name, bytes)` for every file of the archive in `r`, in archive order.
pub fn for_each_entry<R: BufRead>(
    mut r: R,
    mut entry: impl FnMut(&str, Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("reading the export archive: {e}");
    loop {
        let mut sig = [0u8; 4];
        match r.read_exact(&mut sig) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err("the export archive ends before its directory".into());
            }
            Err(e) => return Err(io(e)),
        }
        match u32::from_le_bytes(sig) {
            LOCAL_HEADER => {}
            CENTRAL_HEADER | END_OF_CENTRAL => return Ok(()),
            other => return Err(format!("not a zip archive (signature {other:#010x})")),
        }
        let mut h = [0u8; 26];
        r.read_exact(&mut h).map_err(io)?;
        let (flags, method) = (u16_at(&h, 2), u16_at(&h, 4));
        let size = u64::from(u32_at(&h, 14));
        let (name_len, extra_len) = (usize::from(u16_at(&h, 22)), u64::from(u16_at(&h, 24)));
        let mut name = vec![0u8; name_len];
        r.read_exact(&mut name).map_err(io)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        std::io::copy(&mut (&mut r).take(extra_len), &mut std::io::sink()).map_err(io)?;
        let described = flags & HAS_DESCRIPTOR != 0;
        let mut data = Vec::new();
        match (method, described) {
            (0, false) => {
                (&mut r).take(size).read_to_end(&mut data).map_err(io)?;
            }
            (8, false) => {
                let mut compressed = (&mut r).take(size);
                DeflateDecoder::new(&mut compressed)
                    .take(MAX_ENTRY)
                    .read_to_end(&mut data)
                    .map_err(io)?;
                std::io::copy(&mut compressed, &mut std::io::sink()).map_err(io)?;
            }
            (8, true) => {
                // Deflate ends by itself; the bufread decoder consumes no byte past the end.
                DeflateDecoder::new(&mut r)
                    .take(MAX_ENTRY)
                    .read_to_end(&mut data)
                    .map_err(io)?;
                let mut d = [0u8; 12];
                r.read_exact(&mut d[..4]).map_err(io)?;
                let rest = if u32_at(&d, 0) == DATA_DESCRIPTOR {
                    12
                } else {
                    8
                };
                r.read_exact(&mut d[..rest]).map_err(io)?;
            }
            (m, _) => {
                return Err(format!(
                    "entry `{name}` of the export archive uses compression method {m}, which annoform cannot read"
                ));
            }
        }
        if !name.ends_with('/') {
            entry(&name, data)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn local(name: &str, method: u16, flags: u16, data: &[u8], size: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(LOCAL_HEADER.to_le_bytes());
        out.extend(20u16.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend(method.to_le_bytes());
        out.extend([0u8; 8]); // time, date, crc
        out.extend(size.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn stored_deflated_and_described_entries_read_in_order() {
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(b"{\"b\":2}").unwrap();
        let deflated = z.finish().unwrap();
        let mut archive = local("a.json", 0, 0, b"{\"a\":1}", 7);
        archive.extend(local("b.json", 8, 0, &deflated, deflated.len() as u32));
        archive.extend(local("c.json", 8, HAS_DESCRIPTOR, &deflated, 0));
        archive.extend(DATA_DESCRIPTOR.to_le_bytes());
        archive.extend([0u8; 12]);
        archive.extend(local("dir/", 0, 0, b"", 0));
        archive.extend(CENTRAL_HEADER.to_le_bytes());
        let mut seen = Vec::new();
        for_each_entry(&archive[..], |n, d| {
            seen.push((n.to_string(), String::from_utf8(d).unwrap()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("a.json".into(), "{\"a\":1}".into()),
                ("b.json".into(), "{\"b\":2}".into()),
                ("c.json".into(), "{\"b\":2}".into())
            ]
        );
        let cut = &archive[..archive.len() / 2];
        assert!(for_each_entry(cut, |_, _| Ok(())).is_err());
        assert!(for_each_entry(&b"<html>"[..], |_, _| Ok(())).is_err());
    }
}
