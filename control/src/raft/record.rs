//! Framing of append-only files (the WAL, the vote file):
//! `[u32 len][u32 crc32][payload]`, little-endian, where the crc covers the
//! four length bytes and the payload, and the payload is postcard.
//!
//! Pure: [`append_record`] encodes into a buffer and [`scan`] walks a byte
//! slice. A record cut short at the end of the data (a crash mid-write) is
//! reported as a torn tail the caller may drop; damage followed by more
//! data is corruption the caller must refuse.

use serde::Serialize;

/// Bytes before each payload: length and checksum.
pub const RECORD_HEADER_BYTES: usize = 8;

/// Encoding failures.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The payload exceeds the record limit.
    #[error("record payload of {bytes} bytes exceeds the {max}-byte limit")]
    TooLarge { bytes: usize, max: usize },
    /// Serialization failed.
    #[error("record payload does not encode: {0}")]
    Encode(#[from] postcard::Error),
}

/// Appends one framed record holding `value` to `out`. Returns the record's
/// size in bytes. On error `out` is left as it was.
pub fn append_record<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    payload_bytes_max: usize,
) -> Result<usize, RecordError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_BYTES]);
    if let Err(e) = postcard::to_io(value, &mut *out) {
        out.truncate(start);
        return Err(RecordError::Encode(e));
    }
    let payload_len = out.len() - start - RECORD_HEADER_BYTES;
    if payload_len > payload_bytes_max {
        out.truncate(start);
        return Err(RecordError::TooLarge {
            bytes: payload_len,
            max: payload_bytes_max,
        });
    }
    let len_bytes = (payload_len as u32).to_le_bytes();
    let crc = checksum(len_bytes, &out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

fn checksum(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(payload);
    h.finalize()
}

/// One intact record found by [`scan`].
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Offset of the record header in the scanned slice.
    pub offset: usize,
    /// The record's payload bytes.
    pub payload: &'a [u8],
}

/// A damaged last record: everything from `offset` on is to be dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the damaged record starts.
    pub offset: usize,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// What [`scan`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    pub records: Vec<Record<'a>>,
    /// Bytes up to the end of the last intact record.
    pub valid_len: usize,
    pub torn: Option<TornTail>,
}

/// Damage that is not a torn tail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt record at byte {offset}: {reason}")]
pub struct Corrupt {
    pub offset: usize,
    pub reason: String,
}

/// Walks the records of `buf` from `start`.
///
/// * A partial header, a record running past the end, a zero-filled tail,
///   or a bad checksum on the record that ends exactly at the end of `buf`
///   is a torn tail (a crash during the last write).
/// * A bad checksum, a zero length or a length above `payload_bytes_max`
///   with more data after the record is [`Corrupt`].
pub fn scan(buf: &[u8], start: usize, payload_bytes_max: usize) -> Result<Scan<'_>, Corrupt> {
    let mut records = Vec::new();
    let mut at = start;
    let torn = loop {
        let rest = &buf[at.min(buf.len())..];
        if rest.is_empty() {
            break None;
        }
        if rest.len() < RECORD_HEADER_BYTES {
            break Some(TornTail {
                offset: at,
                reason: "partial record header",
            });
        }
        let len_bytes: [u8; 4] = rest[0..4].try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if len == 0 {
            if rest.iter().all(|b| *b == 0) {
                break Some(TornTail {
                    offset: at,
                    reason: "zero-filled tail",
                });
            }
            return Err(Corrupt {
                offset: at,
                reason: "zero-length record followed by data".into(),
            });
        }
        let end = RECORD_HEADER_BYTES + len;
        if end > rest.len() {
            break Some(TornTail {
                offset: at,
                reason: "record runs past the end",
            });
        }
        if len > payload_bytes_max {
            return Err(Corrupt {
                offset: at,
                reason: format!("length {len} exceeds the {payload_bytes_max}-byte record limit"),
            });
        }
        let payload = &rest[RECORD_HEADER_BYTES..end];
        if checksum(len_bytes, payload) != crc {
            if end == rest.len() {
                break Some(TornTail {
                    offset: at,
                    reason: "bad checksum on the last record",
                });
            }
            return Err(Corrupt {
                offset: at,
                reason: "checksum mismatch".into(),
            });
        }
        records.push(Record { offset: at, payload });
        at += end;
    };
    let valid_len = torn.as_ref().map(|t| t.offset).unwrap_or(buf.len().max(start));
    Ok(Scan {
        records,
        valid_len,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn framed(values: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            append_record(&mut out, v, MAX).unwrap();
        }
        out
    }

    fn payloads(scan: &Scan<'_>) -> Vec<String> {
        scan.records
            .iter()
            .map(|r| postcard::from_bytes::<String>(r.payload).unwrap())
            .collect()
    }

    #[test]
    fn round_trips_records() {
        let buf = framed(&["a", "bb", "ccc"]);
        let s = scan(&buf, 0, MAX).unwrap();
        assert_eq!(payloads(&s), ["a", "bb", "ccc"]);
        assert_eq!(s.valid_len, buf.len());
        assert_eq!(s.torn, None);
        assert_eq!(s.records[1].offset, RECORD_HEADER_BYTES + 2);
    }

    #[test]
    fn scan_starts_after_a_file_header() {
        let mut buf = b"MAGIC!!!".to_vec();
        append_record(&mut buf, "x", MAX).unwrap();
        let s = scan(&buf, 8, MAX).unwrap();
        assert_eq!(payloads(&s), ["x"]);
        assert_eq!(scan(b"MAGIC!!!", 8, MAX).unwrap().valid_len, 8);
    }

    #[test]
    fn oversized_payload_is_refused_and_buffer_untouched() {
        let mut out = framed(&["keep"]);
        let before = out.clone();
        let big = "x".repeat(MAX + 1);
        match append_record(&mut out, &big, MAX) {
            Err(RecordError::TooLarge { bytes, max }) => {
                assert!(bytes > MAX);
                assert_eq!(max, MAX);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(out, before);
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let buf = framed(&["first", "second-record"]);
        let second = scan(&buf, 0, MAX).unwrap().records[1].offset;
        for cut in second + 1..buf.len() {
            let s = scan(&buf[..cut], 0, MAX).unwrap();
            assert_eq!(payloads(&s), ["first"], "cut at {cut}");
            assert_eq!(s.valid_len, second);
            assert!(s.torn.is_some());
        }
    }

    #[test]
    fn flipped_byte_in_last_record_is_torn_elsewhere_corrupt() {
        let buf = framed(&["one", "two", "three"]);
        let offsets: Vec<usize> = scan(&buf, 0, MAX).unwrap().records.iter().map(|r| r.offset).collect();

        let mut last_bad = buf.clone();
        *last_bad.last_mut().unwrap() ^= 0x55;
        let s = scan(&last_bad, 0, MAX).unwrap();
        assert_eq!(payloads(&s), ["one", "two"]);
        assert_eq!(s.torn.unwrap().reason, "bad checksum on the last record");

        let mut middle_bad = buf.clone();
        middle_bad[offsets[1] + RECORD_HEADER_BYTES] ^= 0x55;
        let err = scan(&middle_bad, 0, MAX).unwrap_err();
        assert_eq!(err.offset, offsets[1]);
        assert!(err.reason.contains("checksum"));
    }

    #[test]
    fn zero_tail_is_torn_but_zero_length_before_data_is_corrupt() {
        let mut buf = framed(&["one"]);
        let good = buf.len();
        buf.extend_from_slice(&[0u8; 64]);
        let s = scan(&buf, 0, MAX).unwrap();
        assert_eq!(s.valid_len, good);
        assert_eq!(s.torn.unwrap().reason, "zero-filled tail");

        buf.push(1);
        assert!(scan(&buf, 0, MAX).unwrap_err().reason.contains("zero-length"));
    }

    #[test]
    fn length_above_limit_with_data_after_is_corrupt() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&((MAX + 1) as u32).to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&vec![9u8; MAX + 10]);
        let err = scan(&buf, 0, MAX).unwrap_err();
        assert_eq!(err.offset, 0);
        assert!(err.reason.contains("exceeds"));
    }
}
