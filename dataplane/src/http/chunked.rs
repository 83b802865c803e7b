//! `Transfer-Encoding: chunked` request bodies (RFC 9112 §7.1), sans-IO.
//!
//! [`scan`] walks the framing in the bytes received so far without copying
//! and says whether the body is complete, how many wire bytes it spans, and
//! how large it decodes; it fails as soon as the declared chunk sizes pass
//! the endpoint's limit. [`decode`] then copies the data of a complete body
//! out. Chunk extensions and trailers are read and ignored, as Go does.

use super::limits::{CHUNK_LINE_BYTES_MAX, CHUNK_OVERHEAD_BYTES_MAX, HEAD_BYTES_MAX};

/// How far a chunked body has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkScan {
    /// More bytes are needed.
    Incomplete,
    /// The body ends `consumed` bytes in and decodes to `decoded_bytes`.
    Complete { consumed: usize, decoded_bytes: usize },
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Bad chunk size, missing CRLF, over-long line or trailer.
    Malformed,
    /// The declared chunks add up to more than the limit.
    TooLarge { decoded_bytes: usize },
}

/// Walks the chunked framing in `buf` (which starts at the body).
pub fn scan(buf: &[u8], decoded_bytes_max: usize) -> Result<ChunkScan, ChunkError> {
    walk(buf, decoded_bytes_max, None)
}

/// Copies the data of a body that [`scan`] reported complete (`buf` is the
/// body's `consumed` wire bytes).
pub fn decode(buf: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    let result = walk(buf, usize::MAX, Some(&mut data));
    debug_assert!(
        matches!(result, Ok(ChunkScan::Complete { .. })),
        "decode of an unscanned body"
    );
    data
}

fn walk(buf: &[u8], decoded_bytes_max: usize, mut sink: Option<&mut Vec<u8>>) -> Result<ChunkScan, ChunkError> {
    let mut pos = 0;
    let mut decoded = 0usize;
    let mut excess = 0usize;
    loop {
        let Some((line, next)) = read_line(buf, pos, CHUNK_LINE_BYTES_MAX)? else {
            return Ok(ChunkScan::Incomplete);
        };
        let size = parse_chunk_size(line)?;
        // Go's overhead rule: the size line and the CRLF after the data,
        // minus an allowance that grows with the chunk.
        excess = (excess + (next - pos) + 2).saturating_sub(size.saturating_mul(2).saturating_add(16));
        if excess > CHUNK_OVERHEAD_BYTES_MAX {
            return Err(ChunkError::Malformed);
        }
        pos = next;
        if size == 0 {
            break;
        }
        decoded = decoded.checked_add(size).ok_or(ChunkError::Malformed)?;
        if decoded > decoded_bytes_max {
            return Err(ChunkError::TooLarge { decoded_bytes: decoded });
        }
        let data_end = pos.checked_add(size).ok_or(ChunkError::Malformed)?;
        if buf.len() < data_end + 2 {
            return Ok(ChunkScan::Incomplete);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(ChunkError::Malformed);
        }
        if let Some(data) = sink.as_deref_mut() {
            data.extend_from_slice(&buf[pos..data_end]);
        }
        pos = data_end + 2;
    }
    // Trailer fields, then the empty line that ends the body.
    let trailer_start = pos;
    loop {
        let Some((line, next)) = read_line(buf, pos, HEAD_BYTES_MAX)? else {
            return Ok(ChunkScan::Incomplete);
        };
        pos = next;
        if pos - trailer_start > HEAD_BYTES_MAX {
            return Err(ChunkError::Malformed);
        }
        if line.is_empty() {
            return Ok(ChunkScan::Complete {
                consumed: pos,
                decoded_bytes: decoded,
            });
        }
    }
}

/// The line starting at `pos` without its `\r\n` (or bare `\n`, which Go
/// tolerates), and where the next line starts. `None` when incomplete.
fn read_line(buf: &[u8], pos: usize, line_bytes_max: usize) -> Result<Option<(&[u8], usize)>, ChunkError> {
    let rest = &buf[pos..];
    let window = &rest[..rest.len().min(line_bytes_max + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let line = &rest[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((line, pos + nl + 1)))
        }
        None if rest.len() > line_bytes_max + 1 => Err(ChunkError::Malformed),
        None => Ok(None),
    }
}

/// Hex size, then optional whitespace and `;extension`s (ignored).
fn parse_chunk_size(line: &[u8]) -> Result<usize, ChunkError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(ChunkError::Malformed);
    }
    let rest = &line[digits..];
    let rest_trimmed = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&[][..], |i| &rest[i..]);
    if !rest_trimmed.is_empty() && rest_trimmed[0] != b';' {
        return Err(ChunkError::Malformed);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ChunkError::Malformed)?;
    let size = u64::from_str_radix(text, 16).map_err(|_| ChunkError::Malformed)?;
    usize::try_from(size).map_err(|_| ChunkError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";

    #[test]
    fn complete_body_decodes() {
        let scan = scan(BODY, 1024).unwrap();
        let ChunkScan::Complete {
            consumed,
            decoded_bytes,
        } = scan
        else {
            panic!("expected complete, got {scan:?}");
        };
        assert_eq!(&BODY[consumed..], b"NEXT", "stops exactly at the end of the body");
        assert_eq!(decoded_bytes, 23);
        assert_eq!(decode(&BODY[..consumed]), b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let end = BODY.len() - 4;
        for cut in 0..end {
            assert_eq!(scan(&BODY[..cut], 1024), Ok(ChunkScan::Incomplete), "cut at {cut}");
        }
        assert!(matches!(scan(&BODY[..end], 1024), Ok(ChunkScan::Complete { .. })));
    }

    #[test]
    fn empty_body_and_bare_lf() {
        assert_eq!(
            scan(b"0\r\n\r\n", 0),
            Ok(ChunkScan::Complete {
                consumed: 5,
                decoded_bytes: 0
            })
        );
        let lf = b"3\nabc\r\n0\n\n";
        assert!(matches!(scan(lf, 10), Ok(ChunkScan::Complete { consumed: 10, .. })));
        assert_eq!(decode(lf), b"abc");
    }

    #[test]
    fn limit_is_enforced_on_declared_sizes() {
        // The second chunk's size alone passes the limit: refused before its data arrives.
        assert_eq!(
            scan(b"3\r\nabc\r\n10\r\n", 10),
            Err(ChunkError::TooLarge { decoded_bytes: 19 })
        );
        assert!(matches!(
            scan(b"a\r\n0123456789\r\n0\r\n\r\n", 10),
            Ok(ChunkScan::Complete { .. })
        ));
    }

    #[test]
    fn malformed_framing_is_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"3\r\nabcX\r\n",
            b"3 junk\r\nabc\r\n",
            b"11111111111111111\r\n",
            b"ffffffffffffffff\r\n",
        ] {
            assert!(scan(bad, usize::MAX).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut tiny_chunks_long_extensions = Vec::new();
        while tiny_chunks_long_extensions.len() < 2 * CHUNK_OVERHEAD_BYTES_MAX {
            tiny_chunks_long_extensions.extend_from_slice(format!("1;{}\r\nx\r\n", "e".repeat(200)).as_bytes());
        }
        assert_eq!(
            scan(&tiny_chunks_long_extensions, usize::MAX),
            Err(ChunkError::Malformed)
        );
        // Small chunks without extensions stay within the allowance.
        let mut small_chunks = b"1\r\nx\r\n".repeat(50_000);
        small_chunks.extend_from_slice(b"0\r\n\r\n");
        assert!(matches!(
            scan(&small_chunks, usize::MAX),
            Ok(ChunkScan::Complete {
                decoded_bytes: 50_000,
                ..
            })
        ));
        let long_line = vec![b'1'; CHUNK_LINE_BYTES_MAX + 10];
        assert_eq!(scan(&long_line, usize::MAX), Err(ChunkError::Malformed));
        let mut endless_trailer = b"0\r\n".to_vec();
        while endless_trailer.len() < HEAD_BYTES_MAX + 100 {
            endless_trailer.extend_from_slice(b"X-Trailer: 0123456789\r\n");
        }
        assert_eq!(scan(&endless_trailer, 10), Err(ChunkError::Malformed));
    }
}
