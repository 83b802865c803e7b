//! Query files: one `name TYPE` per line (`TYPE` defaults to `A`), turned
//! into query messages once, before the load starts.

use std::str::FromStr;

use anyhow::bail;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::input_file::meaningful_lines;

/// Offset of the question section in a DNS message.
pub const QUESTION_OFFSET: usize = 12;

/// One query, encoded with id 0; the driver writes the id into bytes 0..2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTemplate {
    pub wire: Vec<u8>,
}

impl QueryTemplate {
    /// The question section (name, type, class) as sent.
    pub fn question(&self) -> &[u8] {
        &self.wire[QUESTION_OFFSET..]
    }
}

/// Encodes a recursion-desired query for `name` of type `record_type`.
pub fn encode_query(name: &str, record_type: &str) -> Result<QueryTemplate, String> {
    let mut qname = Name::from_ascii(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
    qname.set_fqdn(true);
    let rtype = RecordType::from_str(&record_type.to_ascii_uppercase())
        .map_err(|_| format!("unknown record type {record_type:?}"))?;
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, rtype));
    let wire = msg
        .to_vec()
        .map_err(|e| format!("cannot encode {name} {record_type}: {e}"))?;
    Ok(QueryTemplate { wire })
}

/// Parses a query file.
pub fn parse_queries(text: &str) -> anyhow::Result<Vec<QueryTemplate>> {
    let mut out = Vec::new();
    for (line_no, line) in meaningful_lines(text)? {
        let mut fields = line.split_ascii_whitespace();
        let name = fields.next().expect("meaningful lines are not blank");
        let rtype = fields.next().unwrap_or("A");
        if fields.next().is_some() {
            bail!("line {line_no}: expected `name TYPE`, got {line:?}");
        }
        match encode_query(name, rtype) {
            Ok(q) => out.push(q),
            Err(e) => bail!("line {line_no}: {e}"),
        }
    }
    if out.is_empty() {
        bail!("no queries in the file");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_query_hickory_reads_back() {
        let q = encode_query("svc1.service.consul", "srv").unwrap();
        let msg = Message::from_vec(&q.wire).unwrap();
        assert_eq!(msg.metadata.id, 0);
        assert!(msg.metadata.recursion_desired);
        assert_eq!(msg.queries.len(), 1);
        assert_eq!(msg.queries[0].query_type(), RecordType::SRV);
        assert_eq!(msg.queries[0].name().to_ascii(), "svc1.service.consul.");
        assert_eq!(q.question().len(), q.wire.len() - QUESTION_OFFSET);
    }

    #[test]
    fn file_lines_with_default_type_and_comments() {
        let qs =
            parse_queries("# A lookups\nsvc1.service.consul A\n\nnode1.node.consul\n_svc1._tcp.service.consul SRV\n")
                .unwrap();
        assert_eq!(qs.len(), 3);
        let types: Vec<RecordType> = qs
            .iter()
            .map(|q| Message::from_vec(&q.wire).unwrap().queries[0].query_type())
            .collect();
        assert_eq!(types, vec![RecordType::A, RecordType::A, RecordType::SRV]);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = parse_queries("a.consul A\nb.consul BOGUS\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("BOGUS"), "{err}");
        let err = parse_queries("a.consul A extra\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let long_label = format!("{}.consul A\n", "x".repeat(64));
        assert!(parse_queries(&long_label).unwrap_err().to_string().contains("line 1"));
        assert!(parse_queries("# none\n").is_err());
    }
}
