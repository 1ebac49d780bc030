//! Gzip (RFC 1952) of *stored* deflate blocks: what the PES asks of an embedded piece
//! justificative (`PES_PJ/PJ/Contenu/Fichier`: "compressé avec Gzip puis converti en
//! base 64"), without a compression library.
//!
//! The bill's PDF is already compressed inside, so deflating it again would gain little;
//! stored blocks are valid gzip that every reader (`gzip -d`, Hélios) decodes. The output is
//! deterministic (modification time 0, no file name): a retry writes the same bytes, so
//! the file transport recognises a file it already published.

/// The largest payload of one stored deflate block.
const BLOCK: usize = 65_535;

/// `data` as a gzip member of stored blocks.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(BLOCK).max(1);
    let mut out = Vec::with_capacity(data.len() + blocks * 5 + 18);
    // ID1 ID2, CM = deflate, FLG = none, MTIME = 0, XFL = 0, OS = 255 (unknown).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut chunks = data.chunks(BLOCK).peekable();
    if data.is_empty() {
        // One final empty stored block.
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        // BFINAL, BTYPE = 00 (stored), then byte-aligned LEN and its complement.
        out.push(last);
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE: the length modulo 2^32, as the format says.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected, as gzip uses it).
pub fn crc32(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    }
    const TABLE: [u32; 256] = table();
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_known_texts() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn blocks_are_laid_out_as_rfc_1951_says() {
        let empty = gzip_stored(b"");
        assert_eq!(empty.len(), 10 + 5 + 8);
        let data = vec![7u8; BLOCK + 10];
        let out = gzip_stored(&data);
        assert_eq!(out.len(), 10 + 5 + BLOCK + 5 + 10 + 8);
        assert_eq!(out[10], 0, "first block not final");
        assert_eq!(out[10 + 5 + BLOCK], 1, "last block final");
        assert_eq!(&out[out.len() - 4..], &((BLOCK + 10) as u32).to_le_bytes());
    }
}
