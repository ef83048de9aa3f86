//! The zip the fake's exports download as: deflated entries whose sizes follow their data
//! (a data descriptor, as streaming zip writers make them), then the central directory.

use std::io::Write;

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend(v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_le_bytes());
}

/// A zip of `files` (name, bytes).
pub fn write(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).expect("deflate");
        let packed = z.finish().expect("deflate");
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20);
        u16le(&mut out, 1 << 3);
        u16le(&mut out, 8);
        u32le(&mut out, 0); // time, date
        u32le(&mut out, 0);
        u32le(&mut out, 0);
        u32le(&mut out, 0);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend(name.as_bytes());
        out.extend(&packed);
        u32le(&mut out, 0x0807_4b50);
        u32le(&mut out, crc);
        u32le(&mut out, packed.len() as u32);
        u32le(&mut out, data.len() as u32);

        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20);
        u16le(&mut central, 20);
        u16le(&mut central, 1 << 3);
        u16le(&mut central, 8);
        u32le(&mut central, 0);
        u32le(&mut central, crc);
        u32le(&mut central, packed.len() as u32);
        u32le(&mut central, data.len() as u32);
        u16le(&mut central, name.len() as u16);
        u16le(&mut central, 0); // extra
        u16le(&mut central, 0); // comment
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend(name.as_bytes());
    }
    let start = out.len() as u32;
    let size = central.len() as u32;
    out.extend(central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, files.len() as u16);
    u16le(&mut out, files.len() as u16);
    u32le(&mut out, size);
    u32le(&mut out, start);
    u16le(&mut out, 0);
    out
}
