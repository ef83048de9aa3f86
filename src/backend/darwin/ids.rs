//! Darwin annotation ids derived from our label ids. Darwin takes client-made annotation ids
//! (UUIDs) on import and gives them back in exports, so each label we upload goes up under a
//! UUID built from its ObjectId: the merge reads our id back from the UUID, and a label an
//! annotator drew in Darwin (a random v4 UUID) is told apart from ours by its layout.
//!
//! Layout (32 hex digits, UUID version 8, RFC 9562 variant): the label id's 24 digits spread
//! over the fields, a 4-digit part number (a keypoint label goes up as one Darwin keypoint
//! per point) and the marker `af`:
//! `OOOOOOOO-OOOO-8OOO-aOOO-OOOOOOPPPPaf`.

use crate::dataset::ejson::ObjectId;

/// The last two digits of every id annoform makes.
const MARKER: &str = "af";

/// The Darwin annotation id of part `part` of label `label`.
pub fn annotation_id(label: ObjectId, part: u16) -> String {
    let o = label.to_string();
    format!(
        "{}-{}-8{}-a{}-{}{part:04x}{MARKER}",
        &o[0..8],
        &o[8..12],
        &o[12..15],
        &o[15..18],
        &o[18..24]
    )
}

/// The label id and part number an annotation id was made from, if annoform made it.
pub fn label_of(id: &str) -> Option<(ObjectId, u16)> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.ends_with(MARKER) || id.len() != 36 {
        return None;
    }
    let (h, v) = (hex.as_bytes()[12], hex.as_bytes()[16]);
    if h != b'8' || v != b'a' {
        return None;
    }
    let oid = format!(
        "{}{}{}{}",
        &hex[0..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..26]
    );
    let part = u16::from_str_radix(&hex[26..30], 16).ok()?;
    Some((ObjectId::parse(&oid).ok()?, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_random_uuids_are_not_ours() {
        let oid = ObjectId::parse("6b0000000dec00000000000f").unwrap();
        for part in [0u16, 1, 17, u16::MAX] {
            let id = annotation_id(oid, part);
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(id.matches('-').count(), 4, "{id}");
            assert_eq!(label_of(&id), Some((oid, part)), "{id}");
        }
        assert_eq!(
            annotation_id(oid, 0),
            "6b000000-0dec-8000-a000-00000f0000af"
        );
        assert_eq!(label_of("57d49f01-8e1c-4b5a-9a63-0d8a4f0c21af"), None);
        assert_eq!(label_of("not-an-id"), None);
        assert_eq!(label_of(""), None);
    }
}
