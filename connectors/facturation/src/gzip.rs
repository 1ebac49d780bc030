//! Gzip (RFC 1952) of *stored* deflate blocks: what the PES asks of an embedded piece
//! justificative (`PES_PJ/PJ/Contenu/Fichier`: "compressé avec Gzip puis converti en
//! base 64"), written by `flate2` at level 0.
//!
//! The bill's PDF is already compressed inside, so deflating it again would gain little;
//! stored blocks are valid gzip that every reader (`gzip -d`, Hélios) decodes. The output is
//! deterministic (modification time 0, no file name, operating system "unknown"): a retry
//! writes the same bytes, so the file transport recognises a file it already published.

use std::io::Write as _;

use flate2::{Compression, GzBuilder};

/// The operating system byte of the header: 255, "unknown" (the file says nothing of the
/// machine that wrote it, so every instance writes the same bytes).
const OS_UNKNOWN: u8 = 255;

/// `data` as a gzip member of stored blocks.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    // Stored blocks add 5 bytes per 64 KiB or less, and the header and trailer 18.
    let capacity = data.len() + data.len().div_ceil(16_384).max(1) * 5 + 18;
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(OS_UNKNOWN)
        .write(Vec::with_capacity(capacity), Compression::none());
    // Writing into memory does not fail: the only errors of a `GzEncoder` are its sink's.
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .expect("gzip into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn gunzip(gzip: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gzip)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn the_trailer_carries_the_crc32_and_length_of_known_texts() {
        let out = gzip_stored(b"123456789");
        let trailer = &out[out.len() - 8..];
        assert_eq!(trailer[..4], 0xCBF4_3926u32.to_le_bytes(), "CRC-32");
        assert_eq!(trailer[4..], 9u32.to_le_bytes(), "ISIZE");
        let empty = gzip_stored(b"");
        assert_eq!(
            empty[empty.len() - 8..],
            [0; 8],
            "CRC-32 and ISIZE of nothing"
        );
        assert_eq!(gunzip(&empty), b"");
    }

    #[test]
    fn blocks_are_stored_and_the_header_is_deterministic() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let out = gzip_stored(&data);
        // ID1 ID2, CM = deflate, FLG = none (no name), MTIME = 0, XFL, OS = unknown.
        assert_eq!(out[..4], [0x1f, 0x8b, 8, 0]);
        assert_eq!(out[4..8], [0; 4], "MTIME");
        assert_eq!(out[9], OS_UNKNOWN);
        // Stored, not deflated: the data is there as it is, plus a few bytes per block.
        assert!(out.len() >= data.len() + 18, "{} bytes", out.len());
        assert!(out.len() <= data.len() + 18 + 5 * data.len().div_ceil(16_384) + 5);
        assert!(out.windows(1024).any(|w| w == &data[..1024]));
        assert_eq!(&out[out.len() - 4..], &(data.len() as u32).to_le_bytes());
        assert_eq!(gunzip(&out), data);
        assert_eq!(gzip_stored(&data), out, "the same bytes every time");
    }
}
