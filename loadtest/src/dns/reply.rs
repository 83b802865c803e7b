//! The few fields of a reply the generator looks at, read straight from
//! the bytes (no full parse on the hot path).

use crate::dns::query_file::QUESTION_OFFSET;

/// Header fields of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub id: u16,
    /// QR bit set.
    pub is_response: bool,
    /// TC bit set.
    pub truncated: bool,
    /// The 4-bit RCODE of the header.
    pub rcode: u8,
}

/// Reads the header; `None` if `bytes` is shorter than a header.
pub fn parse_reply_header(bytes: &[u8]) -> Option<ReplyHeader> {
    if bytes.len() < QUESTION_OFFSET {
        return None;
    }
    Some(ReplyHeader {
        id: u16::from_be_bytes([bytes[0], bytes[1]]),
        is_response: bytes[2] & 0x80 != 0,
        truncated: bytes[2] & 0x02 != 0,
        rcode: bytes[3] & 0x0f,
    })
}

/// Whether the reply echoes `question` (QDCOUNT 1, same name ignoring
/// ASCII case, same type and class): tells an answer to this query from a
/// late answer to an earlier query that used the same id.
pub fn echoes_question(reply: &[u8], question: &[u8]) -> bool {
    reply.len() >= QUESTION_OFFSET + question.len()
        && reply[4..6] == [0, 1]
        && reply[QUESTION_OFFSET..QUESTION_OFFSET + question.len()].eq_ignore_ascii_case(question)
}

/// The mnemonic of a header RCODE.
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "RCODE_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::query_file::encode_query;
    use hickory_proto::op::{Message, ResponseCode};

    fn reply_to(query: &[u8], id: u16, rcode: ResponseCode) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let mut r = Message::error_msg(id, q.metadata.op_code, rcode);
        r.add_queries(q.queries.clone());
        r.to_vec().unwrap()
    }

    #[test]
    fn header_of_a_real_reply() {
        let q = encode_query("svc1.service.consul", "A").unwrap();
        let r = reply_to(&q.wire, 0xbeef, ResponseCode::NXDomain);
        let h = parse_reply_header(&r).unwrap();
        assert_eq!(h.id, 0xbeef);
        assert!(h.is_response);
        assert!(!h.truncated);
        assert_eq!(rcode_name(h.rcode), "NXDOMAIN");
        assert!(echoes_question(&r, q.question()));
    }

    #[test]
    fn other_questions_and_short_replies_do_not_match() {
        let a = encode_query("svc1.service.consul", "A").unwrap();
        let b = encode_query("svc2.service.consul", "A").unwrap();
        let srv = encode_query("svc1.service.consul", "SRV").unwrap();
        let r = reply_to(&a.wire, 1, ResponseCode::NoError);
        assert!(!echoes_question(&r, b.question()));
        assert!(!echoes_question(&r, srv.question()));
        assert!(!echoes_question(&r[..14], a.question()));
        assert_eq!(parse_reply_header(&r[..11]), None);
        let upper = encode_query("SVC1.Service.CONSUL", "A").unwrap();
        assert!(echoes_question(&r, upper.question()), "names compare without case");
    }
}
