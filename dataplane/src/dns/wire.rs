//! DNS wire format (RFC 1035, RFC 6891 EDNS0, RFC 7871 client subnet),
//! just what an authoritative server needs: parse a query into fixed-size
//! buffers (no heap), write a response with name compression into a
//! reused buffer. Pure: bytes in, bytes out.

/// Record types and pseudo-types we name.
pub mod rtype {
    /// Host address.
    pub const A: u16 = 1;
    /// Name server.
    pub const NS: u16 = 2;
    /// Canonical name.
    pub const CNAME: u16 = 5;
    /// Start of authority.
    pub const SOA: u16 = 6;
    /// Reverse pointer.
    pub const PTR: u16 = 12;
    /// Text.
    pub const TXT: u16 = 16;
    /// IPv6 host address.
    pub const AAAA: u16 = 28;
    /// Service locator.
    pub const SRV: u16 = 33;
    /// EDNS0 pseudo-record.
    pub const OPT: u16 = 41;
    /// Incremental zone transfer.
    pub const IXFR: u16 = 251;
    /// Zone transfer.
    pub const AXFR: u16 = 252;
    /// Any type.
    pub const ANY: u16 = 255;
}

/// Response codes.
pub mod rcode {
    /// No error.
    pub const NOERROR: u8 = 0;
    /// Malformed query.
    pub const FORMERR: u8 = 1;
    /// Server failure.
    pub const SERVFAIL: u8 = 2;
    /// Name does not exist.
    pub const NXDOMAIN: u8 = 3;
    /// Not implemented.
    pub const NOTIMP: u8 = 4;
    /// Refused.
    pub const REFUSED: u8 = 5;
}

/// Class IN.
pub const CLASS_IN: u16 = 1;
/// Fixed header size.
pub const HEADER_BYTES: usize = 12;
/// Longest name on the wire (RFC 1035 §2.3.4).
pub const NAME_BYTES_MAX: usize = 255;
/// Longest label.
pub const LABEL_BYTES_MAX: usize = 63;
/// Most labels a name can have (every label at least one byte).
pub const LABELS_MAX: usize = 127;
/// Classic UDP payload limit without EDNS0.
pub const UDP_PAYLOAD_BYTES_CLASSIC: usize = 512;
/// Largest EDNS0 payload we honour (Consul caps at 65467).
pub const UDP_PAYLOAD_BYTES_MAX: usize = 65_467;
/// Largest DNS message over TCP (the 2-byte length prefix).
pub const TCP_MESSAGE_BYTES_MAX: usize = 65_535;
/// Most compression pointers followed while reading one name.
const POINTER_HOPS_MAX: usize = 16;
/// Most records skipped before the additional section is reached.
const SKIPPED_RECORDS_MAX: usize = 64;
/// Offsets remembered for name compression in one response.
const COMPRESSION_TABLE_MAX: usize = 64;
/// EDNS option code of client subnet.
const EDNS_OPTION_CLIENT_SUBNET: u16 = 8;

/// An address record's bytes before its address when the owner is a
/// pointer: pointer 2, type 2, class 2, TTL 4, rdlength 2.
const ADDRESS_RECORD_FIXED_BYTES: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_RD: u16 = 0x0100;
const FLAG_TC: u16 = 0x0200;
const FLAG_RA: u16 = 0x0080;
const FLAG_CD: u16 = 0x0010;

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Query id, echoed.
    pub id: u16,
    /// QR, opcode, AA, TC, RD, RA, Z, AD, CD and the low rcode bits.
    pub flags: u16,
    /// Questions.
    pub qdcount: u16,
    /// Answer records.
    pub ancount: u16,
    /// Authority records.
    pub nscount: u16,
    /// Additional records.
    pub arcount: u16,
}

impl Header {
    /// Reads the header, if the packet is long enough to have one.
    pub fn parse(packet: &[u8]) -> Option<Header> {
        if packet.len() < HEADER_BYTES {
            return None;
        }
        let word = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]);
        Some(Header {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }

    /// Whether the QR bit marks a response.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }

    /// The opcode (0 = QUERY).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    /// Recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags & FLAG_RD != 0
    }
}

/// A question name, decompressed: the wire bytes as received (case kept,
/// for the echo) and a lower-cased dotted text form for matching.
#[derive(Clone)]
pub struct QName {
    wire: [u8; NAME_BYTES_MAX],
    wire_len: usize,
    text: [u8; NAME_BYTES_MAX],
    text_len: usize,
    /// (start, len) of each label inside `text`.
    labels: [(u8, u8); LABELS_MAX],
    label_count: usize,
}

impl Default for QName {
    fn default() -> Self {
        QName {
            wire: [0; NAME_BYTES_MAX],
            wire_len: 0,
            text: [0; NAME_BYTES_MAX],
            text_len: 0,
            labels: [(0, 0); LABELS_MAX],
            label_count: 0,
        }
    }
}

impl std::fmt::Debug for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QName({:?})", String::from_utf8_lossy(self.text()))
    }
}

impl QName {
    /// Uncompressed wire form, original case, with the root byte.
    pub fn wire(&self) -> &[u8] {
        &self.wire[..self.wire_len]
    }

    /// Lower-cased dotted form without the trailing dot (`""` for the root).
    pub fn text(&self) -> &[u8] {
        &self.text[..self.text_len]
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.label_count
    }

    /// Label `i` (lower-cased bytes).
    pub fn label(&self, i: usize) -> &[u8] {
        let (start, len) = self.labels[i];
        &self.text[start as usize..start as usize + len as usize]
    }

    /// Labels `from..to` joined with dots, as they appear in the text.
    pub fn joined(&self, from: usize, to: usize) -> &[u8] {
        if from >= to {
            return &[];
        }
        let start = self.labels[from].0 as usize;
        let (last_start, last_len) = self.labels[to - 1];
        &self.text[start..last_start as usize + last_len as usize]
    }

    /// Forgets the name without touching its buffers (a reused name is
    /// only ever read up to the lengths set by the next parse).
    fn clear(&mut self) {
        self.wire_len = 0;
        self.text_len = 0;
        self.label_count = 0;
    }

    fn push_label(&mut self, label: &[u8]) -> Result<(), WireError> {
        if label.is_empty() || label.len() > LABEL_BYTES_MAX {
            return Err(WireError);
        }
        if self.wire_len + 1 + label.len() + 1 > NAME_BYTES_MAX || self.label_count == LABELS_MAX {
            return Err(WireError);
        }
        self.wire[self.wire_len] = label.len() as u8;
        self.wire[self.wire_len + 1..self.wire_len + 1 + label.len()].copy_from_slice(label);
        self.wire_len += 1 + label.len();
        if self.label_count > 0 {
            self.text[self.text_len] = b'.';
            self.text_len += 1;
        }
        let start = self.text_len;
        // Copied then lower-cased in place: one bounds check for the
        // label, not one per byte.
        let text = &mut self.text[start..start + label.len()];
        text.copy_from_slice(label);
        text.make_ascii_lowercase();
        self.text_len += label.len();
        self.labels[self.label_count] = (start as u8, label.len() as u8);
        self.label_count += 1;
        Ok(())
    }

    fn finish(&mut self) {
        self.wire[self.wire_len] = 0;
        self.wire_len += 1;
    }
}

/// An EDNS client-subnet option (RFC 7871), echoed with scope 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    /// 1 = IPv4, 2 = IPv6.
    pub family: u16,
    /// Prefix length the client sent.
    pub source_prefix: u8,
    /// The address bytes (only `address_len` are meaningful).
    pub address: [u8; 16],
    /// Bytes of `address` in use.
    pub address_len: u8,
}

/// The requester's OPT record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requester's UDP payload size.
    pub udp_payload: u16,
    /// EDNS version.
    pub version: u8,
    /// DNSSEC OK bit.
    pub dnssec_ok: bool,
    /// Client subnet option, if sent.
    pub client_subnet: Option<ClientSubnet>,
}

/// A parsed query: header, first question, EDNS.
///
/// About 800 bytes (the name's fixed buffers): the hot path parses into
/// one reused `Query` per core ([`parse_query_into`]) instead of building
/// and moving a fresh one per packet.
#[derive(Debug, Clone)]
pub struct Query {
    /// The header.
    pub header: Header,
    /// The first question's name.
    pub qname: QName,
    /// The first question's type.
    pub qtype: u16,
    /// The first question's class.
    pub qclass: u16,
    /// The requester's OPT record.
    pub edns: Option<Edns>,
}

/// Why a packet is not a query we answer normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Unreadable header, or a response: send nothing.
    Drop,
    /// Answer with this rcode and no question.
    Reply {
        /// The query's header (id, opcode, RD echoed).
        header: Header,
        /// The rcode to answer with.
        rcode: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WireError;

impl Default for Query {
    fn default() -> Self {
        Query {
            header: Header {
                id: 0,
                flags: 0,
                qdcount: 0,
                ancount: 0,
                nscount: 0,
                arcount: 0,
            },
            qname: QName::default(),
            qtype: 0,
            qclass: 0,
            edns: None,
        }
    }
}

/// Parses a query. Never panics, whatever the bytes.
pub fn parse_query(packet: &[u8]) -> Result<Query, Rejection> {
    let mut q = Query::default();
    parse_query_into(packet, &mut q)?;
    Ok(q)
}

/// Parses a query into `q`, reusing its buffers: nothing is zeroed or
/// moved per packet. On `Err`, `q` holds a partial parse and must not be
/// answered from. Never panics, whatever the bytes.
pub fn parse_query_into(packet: &[u8], q: &mut Query) -> Result<(), Rejection> {
    let Some(header) = Header::parse(packet) else {
        return Err(Rejection::Drop);
    };
    if header.is_response() {
        return Err(Rejection::Drop);
    }
    let reply = |rcode| Rejection::Reply { header, rcode };
    if header.opcode() != 0 {
        return Err(reply(rcode::NOTIMP));
    }
    if header.qdcount == 0 {
        return Err(reply(rcode::REFUSED));
    }
    if header.qdcount > 1 {
        return Err(reply(rcode::FORMERR));
    }
    let qname = &mut q.qname;
    qname.clear();
    let mut pos = read_name(packet, HEADER_BYTES, Some(qname)).map_err(|_| reply(rcode::FORMERR))?;
    qname.finish();
    let (Some(qtype), Some(qclass)) = (read_u16(packet, pos), read_u16(packet, pos + 2)) else {
        return Err(reply(rcode::FORMERR));
    };
    pos += 4;
    let skipped = header.ancount as usize + header.nscount as usize;
    if skipped > SKIPPED_RECORDS_MAX {
        return Err(reply(rcode::FORMERR));
    }
    for _ in 0..skipped {
        pos = skip_record(packet, pos).map_err(|_| reply(rcode::FORMERR))?;
    }
    let mut edns = None;
    for _ in 0..header.arcount.min(SKIPPED_RECORDS_MAX as u16) {
        let rr_start = pos;
        pos = read_name(packet, pos, None).map_err(|_| reply(rcode::FORMERR))?;
        let (Some(rr_type), Some(class), Some(ttl_hi), Some(ttl_lo), Some(rdlen)) = (
            read_u16(packet, pos),
            read_u16(packet, pos + 2),
            read_u16(packet, pos + 4),
            read_u16(packet, pos + 6),
            read_u16(packet, pos + 8),
        ) else {
            return Err(reply(rcode::FORMERR));
        };
        let rdata_start = pos + 10;
        let rdata_end = rdata_start + rdlen as usize;
        if rdata_end > packet.len() {
            return Err(reply(rcode::FORMERR));
        }
        if rr_type == rtype::OPT {
            if edns.is_some() || packet[rr_start] != 0 {
                return Err(reply(rcode::FORMERR));
            }
            let client_subnet =
                parse_client_subnet(&packet[rdata_start..rdata_end]).map_err(|_| reply(rcode::FORMERR))?;
            edns = Some(Edns {
                udp_payload: class,
                version: (ttl_hi & 0xff) as u8,
                dnssec_ok: ttl_lo & 0x8000 != 0,
                client_subnet,
            });
        }
        pos = rdata_end;
    }
    q.header = header;
    q.qtype = qtype;
    q.qclass = qclass;
    q.edns = edns;
    Ok(())
}

fn read_u16(packet: &[u8], at: usize) -> Option<u16> {
    let b = packet.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads the name at `start`, following compression pointers backwards.
/// Fills `into` if given. Returns the position after the name's bytes in
/// place (after the first pointer if any).
fn read_name(packet: &[u8], start: usize, mut into: Option<&mut QName>) -> Result<usize, WireError> {
    let mut pos = start;
    let mut resume_at = None;
    let mut hops = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *packet.get(pos).ok_or(WireError)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok(resume_at.unwrap_or(pos + 1));
                }
                let label = packet.get(pos + 1..pos + 1 + len).ok_or(WireError)?;
                wire_len += 1 + len;
                if wire_len + 1 > NAME_BYTES_MAX {
                    return Err(WireError);
                }
                if let Some(q) = into.as_deref_mut() {
                    q.push_label(label)?;
                }
                pos += 1 + len;
            }
            0xc0 => {
                let low = *packet.get(pos + 1).ok_or(WireError)? as usize;
                let target = ((len & 0x3f) << 8) | low;
                if target >= pos || hops == POINTER_HOPS_MAX {
                    return Err(WireError);
                }
                hops += 1;
                if resume_at.is_none() {
                    resume_at = Some(pos + 2);
                }
                pos = target;
            }
            _ => return Err(WireError),
        }
    }
}

fn skip_record(packet: &[u8], pos: usize) -> Result<usize, WireError> {
    let pos = read_name(packet, pos, None)?;
    let rdlen = read_u16(packet, pos + 8).ok_or(WireError)? as usize;
    let end = pos + 10 + rdlen;
    if end > packet.len() {
        return Err(WireError);
    }
    Ok(end)
}

fn parse_client_subnet(mut options: &[u8]) -> Result<Option<ClientSubnet>, WireError> {
    let mut found = None;
    while !options.is_empty() {
        if options.len() < 4 {
            return Err(WireError);
        }
        let code = u16::from_be_bytes([options[0], options[1]]);
        let len = u16::from_be_bytes([options[2], options[3]]) as usize;
        let data = options.get(4..4 + len).ok_or(WireError)?;
        if code == EDNS_OPTION_CLIENT_SUBNET {
            if data.len() < 4 {
                return Err(WireError);
            }
            let family = u16::from_be_bytes([data[0], data[1]]);
            let source_prefix = data[2];
            let address_bytes = &data[4..];
            let max_prefix = match family {
                1 => 32,
                2 => 128,
                _ => return Err(WireError),
            };
            if source_prefix > max_prefix || address_bytes.len() != (source_prefix as usize).div_ceil(8) {
                return Err(WireError);
            }
            let mut address = [0u8; 16];
            address[..address_bytes.len()].copy_from_slice(address_bytes);
            found = Some(ClientSubnet {
                family,
                source_prefix,
                address,
                address_len: address_bytes.len() as u8,
            });
        }
        options = &options[4 + len..];
    }
    Ok(found)
}

/// A name to write: dotted pieces concatenated (`["web", "node", "dc1",
/// "consul"]`), or the question's name (a pointer to it).
#[derive(Debug, Clone, Copy)]
pub enum Name<'a> {
    /// The question's name (a pointer to it).
    Question,
    /// Dotted pieces, concatenated.
    Pieces(&'a [&'a [u8]]),
    /// A name already written in this message, at this offset (a
    /// compression pointer to it; see [`ResponseWriter::srv_wire`]).
    Offset(u16),
}

/// The response sections, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    /// The answer section.
    Answer = 0,
    /// The authority section.
    Authority = 1,
    /// The additional section.
    Additional = 2,
}

/// A position to roll back to.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    len: usize,
    names: usize,
}

/// A position in a response being written (see [`ResponseWriter::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    names: usize,
    counts: [u16; 3],
    section: Section,
    full: bool,
}

/// Writes one response into a caller-owned buffer (cleared first).
///
/// Records that would push the message past `size_limit` (minus room for
/// the OPT record) are rolled back and everything after them is dropped:
/// answers keep priority over authority and additional records. Consul
/// truncates silently (no TC bit) unless configured otherwise, and so do we.
pub struct ResponseWriter<'b> {
    buf: &'b mut Vec<u8>,
    size_limit: usize,
    reserved: usize,
    answers_max: usize,
    counts: [u16; 3],
    section: Section,
    full: bool,
    question_written: bool,
    names: [u16; COMPRESSION_TABLE_MAX],
    names_len: usize,
}

impl<'b> ResponseWriter<'b> {
    /// Starts a response to `header`: id, opcode, RD and CD echoed, QR set,
    /// AA as given. `opt_bytes` is the room the final OPT record needs
    /// (0 without EDNS).
    pub fn new(
        buf: &'b mut Vec<u8>,
        header: &Header,
        authoritative: bool,
        size_limit: usize,
        opt_bytes: usize,
        answers_max: usize,
    ) -> ResponseWriter<'b> {
        buf.clear();
        let mut flags = FLAG_QR | (header.flags & (0x7800 | FLAG_RD | FLAG_CD));
        if authoritative {
            flags |= FLAG_AA;
        }
        buf.extend_from_slice(&header.id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0u8; 8]);
        ResponseWriter {
            buf,
            size_limit,
            reserved: opt_bytes,
            answers_max,
            counts: [0; 3],
            section: Section::Answer,
            full: false,
            question_written: false,
            names: [0; COMPRESSION_TABLE_MAX],
            names_len: 0,
        }
    }

    /// Echoes the question (original case) and registers it for compression.
    pub fn question(&mut self, q: &Query) {
        debug_assert_eq!(self.buf.len(), HEADER_BYTES, "the question comes first");
        let start = self.buf.len();
        self.buf.extend_from_slice(q.qname.wire());
        self.buf.extend_from_slice(&q.qtype.to_be_bytes());
        self.buf.extend_from_slice(&q.qclass.to_be_bytes());
        let mut off = start;
        while self.buf[off] != 0 {
            self.remember(off);
            off += 1 + self.buf[off] as usize;
        }
        self.question_written = true;
        self.buf[4..6].copy_from_slice(&1u16.to_be_bytes());
    }

    /// Moves on to a later section.
    pub fn section(&mut self, section: Section) {
        assert!(section >= self.section, "sections are written in order");
        self.section = section;
    }

    /// Records written so far in `section`.
    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    /// Whether a record was dropped for lack of room.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// An A record. Returns whether it fit.
    pub fn a(&mut self, owner: Name<'_>, ttl: u32, addr: std::net::Ipv4Addr) -> bool {
        if let Name::Question = owner {
            return self.question_address(rtype::A, ttl, &addr.octets());
        }
        self.record(owner, rtype::A, ttl, |w| {
            w.buf.extend_from_slice(&addr.octets());
            Ok(())
        })
    }

    /// An AAAA record.
    pub fn aaaa(&mut self, owner: Name<'_>, ttl: u32, addr: std::net::Ipv6Addr) -> bool {
        if let Name::Question = owner {
            return self.question_address(rtype::AAAA, ttl, &addr.octets());
        }
        self.record(owner, rtype::AAAA, ttl, |w| {
            w.buf.extend_from_slice(&addr.octets());
            Ok(())
        })
    }

    /// An A or AAAA record owned by the question: the hot path of service
    /// and node answers. The whole record (a pointer to the question, the
    /// fixed fields, the address) is assembled on the stack and copied
    /// once, with the same rules as [`Self::record`]: nothing after the
    /// writer is full, the answer cap, the size limit (minus the OPT
    /// room), and no record before the question is written.
    fn question_address(&mut self, rr_type: u16, ttl: u32, addr: &[u8]) -> bool {
        debug_assert!(addr.len() == 4 || addr.len() == 16, "an IPv4 or IPv6 address");
        if self.full {
            return false;
        }
        if self.section == Section::Answer && self.counts[0] as usize >= self.answers_max {
            self.full = true;
            return false;
        }
        if !self.question_written {
            // As `record`: the owner cannot be encoded, skip the record.
            return false;
        }
        let record_len = ADDRESS_RECORD_FIXED_BYTES + addr.len();
        if self.buf.len() + record_len + self.reserved > self.size_limit {
            self.full = true;
            return false;
        }
        let mut record = [0u8; ADDRESS_RECORD_FIXED_BYTES + 16];
        record[0..2].copy_from_slice(&(0xc000u16 | HEADER_BYTES as u16).to_be_bytes());
        record[2..4].copy_from_slice(&rr_type.to_be_bytes());
        record[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        record[6..10].copy_from_slice(&ttl.to_be_bytes());
        record[10..12].copy_from_slice(&(addr.len() as u16).to_be_bytes());
        record[ADDRESS_RECORD_FIXED_BYTES..record_len].copy_from_slice(addr);
        self.buf.extend_from_slice(&record[..record_len]);
        self.counts[self.section as usize] += 1;
        true
    }

    /// A TXT record holding `text`, split into 255-byte character strings.
    pub fn txt(&mut self, owner: Name<'_>, ttl: u32, text: &[u8]) -> bool {
        self.record(owner, rtype::TXT, ttl, |w| {
            if text.is_empty() {
                w.buf.push(0);
            }
            for chunk in text.chunks(255) {
                w.buf.push(chunk.len() as u8);
                w.buf.extend_from_slice(chunk);
            }
            Ok(())
        })
    }

    /// An NS record.
    pub fn ns(&mut self, owner: Name<'_>, ttl: u32, target: Name<'_>) -> bool {
        self.record(owner, rtype::NS, ttl, |w| w.name(target))
    }

    /// An SRV record (RFC 2782): `priority weight port target`.
    pub fn srv(&mut self, owner: Name<'_>, ttl: u32, srv: &Srv<'_>) -> bool {
        self.record(owner, rtype::SRV, ttl, |w| {
            w.buf.extend_from_slice(&srv.priority.to_be_bytes());
            w.buf.extend_from_slice(&srv.weight.to_be_bytes());
            w.buf.extend_from_slice(&srv.port.to_be_bytes());
            // RFC 2782: the target is not compressed.
            w.uncompressed_name(srv.target)
        })
    }

    /// An SRV record owned by the question whose target is given in wire
    /// form as `head` (labels, no root) then `tail` (labels and the root),
    /// both already valid labels (see [`encode_labels`]): the hot path of
    /// SRV answers, copying bytes prepared once instead of splitting and
    /// comparing names. The target is written uncompressed (RFC 2782) and
    /// its labels remembered for later names, exactly as [`Self::srv`]
    /// does. Returns the target's offset (for [`Name::Offset`] owners of
    /// the additional records) when the record fit.
    pub fn srv_wire(
        &mut self,
        ttl: u32,
        priority: u16,
        weight: u16,
        port: u16,
        head: &[u8],
        tail: &[u8],
    ) -> Option<u16> {
        let mut target_at = 0usize;
        let fit = self.record(Name::Question, rtype::SRV, ttl, |w| {
            if head.len() + tail.len() > NAME_BYTES_MAX || tail.last() != Some(&0) {
                return Err(WireError);
            }
            w.buf.extend_from_slice(&priority.to_be_bytes());
            w.buf.extend_from_slice(&weight.to_be_bytes());
            w.buf.extend_from_slice(&port.to_be_bytes());
            target_at = w.buf.len();
            w.buf.extend_from_slice(head);
            w.buf.extend_from_slice(tail);
            let mut off = target_at;
            while w.buf[off] != 0 {
                w.remember(off);
                off += 1 + w.buf[off] as usize;
            }
            Ok(())
        });
        debug_assert!(!fit || target_at > HEADER_BYTES, "an SRV target follows the question");
        (fit && target_at < 0x4000).then_some(target_at as u16)
    }

    /// A PTR record.
    pub fn ptr(&mut self, owner: Name<'_>, ttl: u32, target: Name<'_>) -> bool {
        self.record(owner, rtype::PTR, ttl, |w| w.name(target))
    }

    /// The most answer records this response may hold.
    pub fn answers_max(&self) -> usize {
        self.answers_max
    }

    /// The current position, to [`rewind`](Self::rewind) to.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            names: self.names_len,
            counts: self.counts,
            section: self.section,
            full: self.full,
        }
    }

    /// Drops everything written after `mark`.
    pub fn rewind(&mut self, mark: Mark) {
        assert!(mark.len <= self.buf.len(), "rewinding forward");
        self.buf.truncate(mark.len);
        self.names_len = mark.names;
        self.counts = mark.counts;
        self.section = mark.section;
        self.full = mark.full;
    }

    /// Sets the TC bit (the answer was cut to fit).
    pub fn set_truncated(&mut self) {
        self.buf[2] |= (FLAG_TC >> 8) as u8;
    }

    /// Sets the RA bit (recursion is available: recursors are configured).
    pub fn set_recursion_available(&mut self) {
        self.buf[3] |= FLAG_RA as u8;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the header was written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() <= HEADER_BYTES
    }

    /// A CNAME record.
    pub fn cname(&mut self, owner: Name<'_>, ttl: u32, target: Name<'_>) -> bool {
        self.record(owner, rtype::CNAME, ttl, |w| w.name(target))
    }

    /// An SOA record.
    pub fn soa(&mut self, owner: Name<'_>, ttl: u32, soa: &Soa<'_>) -> bool {
        self.record(owner, rtype::SOA, ttl, |w| {
            w.name(soa.mname)?;
            w.name(soa.rname)?;
            for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                w.buf.extend_from_slice(&v.to_be_bytes());
            }
            Ok(())
        })
    }

    fn record(
        &mut self,
        owner: Name<'_>,
        rr_type: u16,
        ttl: u32,
        rdata: impl FnOnce(&mut Self) -> Result<(), WireError>,
    ) -> bool {
        if self.full {
            return false;
        }
        if self.section == Section::Answer && self.counts[0] as usize >= self.answers_max {
            self.full = true;
            return false;
        }
        let cp = self.checkpoint();
        let written = (|| {
            self.name(owner)?;
            self.buf.extend_from_slice(&rr_type.to_be_bytes());
            self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
            self.buf.extend_from_slice(&ttl.to_be_bytes());
            let rdlen_at = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
            rdata(self)?;
            let rdlen = self.buf.len() - rdlen_at - 2;
            let rdlen = u16::try_from(rdlen).map_err(|_| WireError)?;
            self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
            Ok::<(), WireError>(())
        })();
        match written {
            Ok(()) if self.buf.len() + self.reserved <= self.size_limit => {
                self.counts[self.section as usize] += 1;
                true
            }
            Ok(()) => {
                self.rollback(cp);
                self.full = true;
                false
            }
            Err(WireError) => {
                // An unencodable name (label too long...): skip the record.
                self.rollback(cp);
                false
            }
        }
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            len: self.buf.len(),
            names: self.names_len,
        }
    }

    fn rollback(&mut self, cp: Checkpoint) {
        self.buf.truncate(cp.len);
        self.names_len = cp.names;
    }

    fn remember(&mut self, offset: usize) {
        if offset < 0x4000 && self.names_len < COMPRESSION_TABLE_MAX {
            self.names[self.names_len] = offset as u16;
            self.names_len += 1;
        }
    }

    /// Writes a name, compressed against names already in the message.
    fn name(&mut self, name: Name<'_>) -> Result<(), WireError> {
        let pieces = match name {
            Name::Question if self.question_written => {
                self.buf
                    .extend_from_slice(&(0xc000u16 | HEADER_BYTES as u16).to_be_bytes());
                return Ok(());
            }
            Name::Question => return Err(WireError),
            Name::Offset(at) => {
                if at as usize >= self.buf.len() || at >= 0x4000 {
                    return Err(WireError);
                }
                self.buf.extend_from_slice(&(0xc000u16 | at).to_be_bytes());
                return Ok(());
            }
            Name::Pieces(p) => p,
        };
        let mut labels: [&[u8]; LABELS_MAX] = [&[]; LABELS_MAX];
        let n = split_labels(pieces, &mut labels)?;
        let labels = &labels[..n];
        for i in 0..n {
            if let Some(target) = self.find_suffix(&labels[i..]) {
                self.write_labels(&labels[..i]);
                self.buf.extend_from_slice(&(0xc000u16 | target).to_be_bytes());
                return Ok(());
            }
        }
        self.write_labels(labels);
        self.buf.push(0);
        Ok(())
    }

    /// Writes a name in full (no pointers), still remembering its labels
    /// for later names.
    fn uncompressed_name(&mut self, name: Name<'_>) -> Result<(), WireError> {
        let pieces = match name {
            Name::Question | Name::Offset(_) => return Err(WireError),
            Name::Pieces(p) => p,
        };
        let mut labels: [&[u8]; LABELS_MAX] = [&[]; LABELS_MAX];
        let n = split_labels(pieces, &mut labels)?;
        self.write_labels(&labels[..n]);
        self.buf.push(0);
        Ok(())
    }

    fn write_labels(&mut self, labels: &[&[u8]]) {
        for label in labels {
            let at = self.buf.len();
            self.remember(at);
            self.buf.push(label.len() as u8);
            self.buf.extend_from_slice(label);
        }
    }

    /// An earlier offset whose name equals `labels` (ASCII case-insensitive).
    fn find_suffix(&self, labels: &[&[u8]]) -> Option<u16> {
        // Newest first: names repeat their neighbours (an A record after
        // the SRV that named its owner), so matches come early.
        self.names[..self.names_len]
            .iter()
            .rev()
            .copied()
            .find(|&off| name_at_equals(self.buf, off as usize, labels))
    }

    /// Finishes the message: section counts, the OPT record, the rcode.
    /// Returns the message length.
    pub fn finish(self, rcode: u8, opt: Option<&Edns>) -> usize {
        let mut additional = self.counts[2];
        if let Some(edns) = opt {
            write_opt(self.buf, edns);
            additional += 1;
        }
        self.buf[3] = (self.buf[3] & 0xf0) | (rcode & 0x0f);
        self.buf[6..8].copy_from_slice(&self.counts[0].to_be_bytes());
        self.buf[8..10].copy_from_slice(&self.counts[1].to_be_bytes());
        self.buf[10..12].copy_from_slice(&additional.to_be_bytes());
        self.buf.len()
    }
}

/// The bytes [`write_opt`] will add for `edns`.
pub fn opt_record_bytes(edns: &Edns) -> usize {
    11 + edns.client_subnet.map_or(0, |cs| 4 + 4 + cs.address_len as usize)
}

fn write_opt(buf: &mut Vec<u8>, edns: &Edns) {
    buf.push(0);
    buf.extend_from_slice(&rtype::OPT.to_be_bytes());
    buf.extend_from_slice(&edns.udp_payload.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
    match edns.client_subnet {
        Some(cs) => {
            let data_len = 4 + cs.address_len as u16;
            buf.extend_from_slice(&(4 + data_len).to_be_bytes());
            buf.extend_from_slice(&EDNS_OPTION_CLIENT_SUBNET.to_be_bytes());
            buf.extend_from_slice(&data_len.to_be_bytes());
            buf.extend_from_slice(&cs.family.to_be_bytes());
            buf.push(cs.source_prefix);
            buf.push(0);
            buf.extend_from_slice(&cs.address[..cs.address_len as usize]);
        }
        None => buf.extend_from_slice(&[0, 0]),
    }
}

/// Splits dotted `pieces` into `labels`; returns how many. Fails on an
/// label over 63 bytes, more than 127 labels, or a name over
/// 255 bytes.
fn split_labels<'p>(pieces: &[&'p [u8]], labels: &mut [&'p [u8]; LABELS_MAX]) -> Result<usize, WireError> {
    let mut n = 0;
    let mut wire_len = 1;
    for piece in pieces {
        for label in piece.split(|b| *b == b'.').filter(|l| !l.is_empty()) {
            if label.len() > LABEL_BYTES_MAX || n == LABELS_MAX {
                return Err(WireError);
            }
            wire_len += 1 + label.len();
            labels[n] = label;
            n += 1;
        }
    }
    if wire_len > NAME_BYTES_MAX {
        return Err(WireError);
    }
    Ok(n)
}

/// Writes dotted `pieces` as wire labels (no root byte) into `out`, with
/// the rules of names written from pieces (empty labels skipped, labels of
/// at most 63 bytes). Returns the bytes written, or `None` when a label is
/// too long or `out` is too small.
pub fn encode_labels(pieces: &[&[u8]], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    for piece in pieces {
        for label in piece.split(|b| *b == b'.').filter(|l| !l.is_empty()) {
            if label.len() > LABEL_BYTES_MAX || len + 1 + label.len() > out.len() {
                return None;
            }
            out[len] = label.len() as u8;
            out[len + 1..len + 1 + label.len()].copy_from_slice(label);
            len += 1 + label.len();
        }
    }
    Some(len)
}

/// Whether the (possibly compressed) name at `off` in `msg` equals `labels`.
fn name_at_equals(msg: &[u8], mut off: usize, labels: &[&[u8]]) -> bool {
    let mut hops = 0;
    let mut i = 0;
    loop {
        let Some(&len) = msg.get(off) else {
            return false;
        };
        if len & 0xc0 == 0xc0 {
            let Some(&low) = msg.get(off + 1) else {
                return false;
            };
            hops += 1;
            if hops > POINTER_HOPS_MAX {
                return false;
            }
            off = (((len & 0x3f) as usize) << 8) | low as usize;
            continue;
        }
        if len == 0 {
            return i == labels.len();
        }
        let len = len as usize;
        if i == labels.len() {
            return false;
        }
        let Some(label) = msg.get(off + 1..off + 1 + len) else {
            return false;
        };
        if !label.eq_ignore_ascii_case(labels[i]) {
            return false;
        }
        i += 1;
        off += 1 + len;
    }
}

/// SOA fields.
#[derive(Debug, Clone, Copy)]
pub struct Soa<'a> {
    /// Primary name server.
    pub mname: Name<'a>,
    /// Responsible mailbox.
    pub rname: Name<'a>,
    /// Zone serial (unix time).
    pub serial: u32,
    /// Refresh, seconds.
    pub refresh: u32,
    /// Retry, seconds.
    pub retry: u32,
    /// Expire, seconds.
    pub expire: u32,
    /// Negative-caching TTL, seconds.
    pub minimum: u32,
}

/// SRV fields.
#[derive(Debug, Clone, Copy)]
pub struct Srv<'a> {
    /// Priority (Consul: always 1).
    pub priority: u16,
    /// Weight.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host.
    pub target: Name<'a>,
}

/// Writes a bare error response (no question) for a rejected query.
pub fn write_rejection(buf: &mut Vec<u8>, header: &Header, rcode: u8) -> usize {
    let w = ResponseWriter::new(buf, header, false, TCP_MESSAGE_BYTES_MAX, 0, 0);
    w.finish(rcode, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query_bytes(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&CLASS_IN.to_be_bytes());
        p
    }

    #[test]
    fn parses_a_plain_question_and_lowercases_it() {
        let q = parse_query(&query_bytes(b"\x03Foo\x04node\x06CONSUL\x00", rtype::A)).unwrap();
        assert_eq!(q.header.id, 0x1234);
        assert!(q.header.recursion_desired());
        assert_eq!(q.qname.text(), b"foo.node.consul");
        assert_eq!(q.qname.wire(), b"\x03Foo\x04node\x06CONSUL\x00");
        assert_eq!(q.qname.label_count(), 3);
        assert_eq!(q.qname.label(1), b"node");
        assert_eq!(q.qname.joined(0, 2), b"foo.node");
        assert_eq!(q.qtype, rtype::A);
        assert!(q.edns.is_none());
    }

    #[test]
    fn root_name_has_no_labels() {
        let q = parse_query(&query_bytes(b"\x00", rtype::NS)).unwrap();
        assert_eq!(q.qname.label_count(), 0);
        assert_eq!(q.qname.text(), b"");
        assert_eq!(q.qname.wire(), b"\x00");
    }

    #[test]
    fn short_packets_and_responses_are_dropped() {
        assert_eq!(parse_query(b"").unwrap_err(), Rejection::Drop);
        assert_eq!(parse_query(&[0u8; 11]).unwrap_err(), Rejection::Drop);
        let mut response = query_bytes(b"\x00", rtype::A);
        response[2] |= 0x80;
        assert_eq!(parse_query(&response).unwrap_err(), Rejection::Drop);
    }

    #[test]
    fn bad_shapes_get_rcodes() {
        let rcode_of = |p: &[u8]| match parse_query(p) {
            Err(Rejection::Reply { rcode, .. }) => rcode,
            other => panic!("unexpected {other:?}"),
        };
        let mut no_question = query_bytes(b"\x00", rtype::A);
        no_question[5] = 0;
        assert_eq!(rcode_of(&no_question), rcode::REFUSED);
        let mut two = query_bytes(b"\x00", rtype::A);
        two[5] = 2;
        assert_eq!(rcode_of(&two), rcode::FORMERR);
        let mut update = query_bytes(b"\x00", rtype::A);
        update[2] = 5 << 3;
        assert_eq!(rcode_of(&update), rcode::NOTIMP);
        let truncated = &query_bytes(b"\x03foo\x00", rtype::A)[..15];
        assert_eq!(rcode_of(truncated), rcode::FORMERR);
        let no_type = &query_bytes(b"\x03foo\x00", rtype::A)[..17];
        assert_eq!(rcode_of(no_type), rcode::FORMERR);
        assert_eq!(
            rcode_of(&query_bytes(b"\x80foo\x00", rtype::A)),
            rcode::FORMERR,
            "reserved label bits"
        );
        let forward_pointer = query_bytes(b"\xc0\x20", rtype::A);
        assert_eq!(rcode_of(&forward_pointer), rcode::FORMERR);
        let self_pointer = query_bytes(b"\xc0\x0c", rtype::A);
        assert_eq!(rcode_of(&self_pointer), rcode::FORMERR);
    }

    #[test]
    fn overlong_names_are_rejected() {
        let mut name = Vec::new();
        for _ in 0..5 {
            name.push(63);
            name.extend_from_slice(&[b'a'; 63]);
        }
        name.push(0);
        match parse_query(&query_bytes(&name, rtype::A)) {
            Err(Rejection::Reply { rcode, .. }) => assert_eq!(rcode, rcode::FORMERR),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_edns_and_client_subnet() {
        let mut p = query_bytes(b"\x03foo\x00", rtype::A);
        p[11] = 1;
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0]);
        let ecs = [0u8, 8, 0, 7, 0, 1, 24, 0, 10, 1, 2];
        p.extend_from_slice(&(ecs.len() as u16).to_be_bytes());
        p.extend_from_slice(&ecs);
        let q = parse_query(&p).unwrap();
        let edns = q.edns.unwrap();
        assert_eq!(edns.udp_payload, 1232);
        assert!(edns.dnssec_ok);
        let cs = edns.client_subnet.unwrap();
        assert_eq!((cs.family, cs.source_prefix, cs.address_len), (1, 24, 3));
        assert_eq!(&cs.address[..3], &[10, 1, 2]);
    }

    #[test]
    fn two_opt_records_or_a_bad_subnet_are_formerr() {
        let mut p = query_bytes(b"\x03foo\x00", rtype::A);
        p[11] = 2;
        for _ in 0..2 {
            p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        }
        assert!(matches!(
            parse_query(&p),
            Err(Rejection::Reply {
                rcode: rcode::FORMERR,
                ..
            })
        ));
        let mut bad = query_bytes(b"\x03foo\x00", rtype::A);
        bad[11] = 1;
        bad.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 8, 0, 8, 0, 4, 0, 1, 33, 0]);
        assert!(matches!(
            parse_query(&bad),
            Err(Rejection::Reply {
                rcode: rcode::FORMERR,
                ..
            })
        ));
    }

    #[test]
    fn srv_targets_are_uncompressed_and_rewind_restores_everything() {
        let q = parse_query(&query_bytes(b"\x03web\x07service\x06consul\x00", rtype::SRV)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 512, 0, 2);
        w.question(&q);
        let mark = w.mark();
        let srv = Srv {
            priority: 1,
            weight: 2,
            port: 80,
            target: Name::Pieces(&[b"n1", b"node.dc1", b"consul"]),
        };
        assert!(w.srv(Name::Question, 0, &srv));
        let after_one = w.len();
        // Owner pointer (2) + type/class/ttl/rdlen (10) + 6 + a full name.
        assert_eq!(
            after_one - mark_len(&q),
            2 + 10 + 6 + b"\x02n1\x04node\x03dc1\x06consul\x00".len()
        );
        assert!(w.srv(Name::Question, 0, &srv));
        assert!(!w.srv(Name::Question, 0, &srv), "answers_max reached");
        assert!(w.is_full());
        w.rewind(mark);
        assert!(!w.is_full() && w.count(Section::Answer) == 0 && w.len() == mark_len(&q));
        assert!(w.ptr(Name::Question, 0, Name::Pieces(&[b"n1.node.dc1.consul"])));
        w.set_truncated();
        w.set_recursion_available();
        w.finish(rcode::NOERROR, None);
        assert_eq!(buf[2] & 0x02, 0x02, "TC");
        assert_eq!(buf[3] & 0x80, 0x80, "RA");
        assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 1);
    }

    #[test]
    fn srv_from_wire_bytes_equals_srv_from_pieces_and_offsets_point_at_its_target() {
        let q = parse_query(&query_bytes(b"\x03web\x07service\x06consul\x00", rtype::SRV)).unwrap();
        let mut by_pieces = Vec::new();
        let mut w = ResponseWriter::new(&mut by_pieces, &q.header, true, 512, 0, 8);
        w.question(&q);
        let srv = Srv {
            priority: 1,
            weight: 2,
            port: 80,
            target: Name::Pieces(&[b"n1.x", b"node", b"dc1", b"consul"]),
        };
        assert!(w.srv(Name::Question, 30, &srv));
        w.section(Section::Additional);
        assert!(w.a(Name::Pieces(&[b"n1.x.node.dc1.consul"]), 5, [10, 0, 0, 1].into()));
        assert!(w.ptr(Name::Question, 5, Name::Pieces(&[b"other.node.dc1.consul"])));
        w.finish(rcode::NOERROR, None);

        let mut head = [0u8; 64];
        let head_len = encode_labels(&[b"n1.x"], &mut head).unwrap();
        assert_eq!(&head[..head_len], b"\x02n1\x01x");
        let mut tail = [0u8; 64];
        let tail_len = encode_labels(&[b"node", b"dc1", b"consul"], &mut tail).unwrap() + 1;
        let mut by_wire = Vec::new();
        let mut w = ResponseWriter::new(&mut by_wire, &q.header, true, 512, 0, 8);
        w.question(&q);
        let at = w
            .srv_wire(30, 1, 2, 80, &head[..head_len], &tail[..tail_len])
            .expect("fits");
        w.section(Section::Additional);
        assert!(w.a(Name::Offset(at), 5, [10, 0, 0, 1].into()));
        assert!(w.ptr(Name::Question, 5, Name::Pieces(&[b"other.node.dc1.consul"])));
        w.finish(rcode::NOERROR, None);
        assert_eq!(by_wire, by_pieces, "same bytes, same compression of later names");
    }

    #[test]
    fn wire_targets_that_cannot_be_names_are_skipped() {
        let q = parse_query(&query_bytes(b"\x03web\x00", rtype::SRV)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 512, 0, 8);
        w.question(&q);
        let long = [b'a'; 64];
        let mut out = [0u8; 300];
        assert_eq!(encode_labels(&[&long], &mut out), None, "a 64-byte label");
        assert_eq!(encode_labels(&[b"abc"], &mut out[..3]), None, "no room");
        let head = [[63u8; 64]; 4].concat();
        assert_eq!(w.srv_wire(0, 1, 1, 1, &head, &[0]), None, "over 255 bytes");
        assert_eq!(w.srv_wire(0, 1, 1, 1, b"\x01a", b"\x01b"), None, "no root byte");
        assert!(!w.is_full(), "skipped, not full");
        assert!(
            !w.a(Name::Offset(4000), 0, [1, 1, 1, 1].into()),
            "an offset past the end"
        );
        assert_eq!(w.count(Section::Answer), 0);
    }

    fn mark_len(q: &Query) -> usize {
        HEADER_BYTES + q.qname.wire().len() + 4
    }

    #[test]
    fn writer_compresses_against_the_question() {
        let q = parse_query(&query_bytes(b"\x03web\x04node\x06consul\x00", rtype::A)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 512, 0, usize::MAX);
        w.question(&q);
        assert!(w.a(Name::Question, 0, "10.0.0.1".parse().unwrap()));
        w.section(Section::Authority);
        assert!(w.ns(Name::Pieces(&[b"consul"]), 0, Name::Pieces(&[b"ns", b"consul."])));
        let len = w.finish(rcode::NOERROR, None);
        assert_eq!(len, buf.len());
        // header 12 + question 21; A: ptr 2 + 10 + 4; NS: ptr 2 + 10 + (3 "ns" + ptr 2)
        assert_eq!(buf.len(), 12 + 21 + 16 + 12 + 5);
        assert_eq!(&buf[33..35], &[0xc0, 12]);
        assert_eq!(
            &buf[49..51],
            &[0xc0, 12 + 4 + 5],
            "owner `consul` points into the question"
        );
    }

    #[test]
    fn writer_rolls_back_what_does_not_fit_and_caps_answers() {
        let q = parse_query(&query_bytes(b"\x03foo\x00", rtype::TXT)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 100, 0, 2);
        w.question(&q);
        assert!(w.txt(Name::Question, 0, b"short"));
        assert!(!w.txt(Name::Question, 0, &[b'x'; 80]), "does not fit");
        assert!(w.is_full());
        assert!(!w.txt(Name::Question, 0, b"tiny"), "nothing after a dropped record");
        assert_eq!(w.count(Section::Answer), 1);
        let len = w.finish(rcode::NOERROR, None);
        assert!(len <= 100);

        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 512, 0, 2);
        w.question(&q);
        assert!(w.txt(Name::Question, 0, b"1"));
        assert!(w.txt(Name::Question, 0, b"2"));
        assert!(!w.txt(Name::Question, 0, b"3"), "answer cap");
    }

    #[test]
    fn unencodable_names_skip_only_that_record() {
        let q = parse_query(&query_bytes(b"\x03foo\x00", rtype::NS)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 512, 0, usize::MAX);
        w.question(&q);
        let long = [b'a'; 64];
        assert!(!w.ns(Name::Question, 0, Name::Pieces(&[&long])));
        assert!(!w.is_full());
        assert!(w.ns(Name::Question, 0, Name::Pieces(&[b"ok"])));
        assert_eq!(w.count(Section::Answer), 1);
    }

    #[test]
    fn long_txt_is_split_into_character_strings() {
        let q = parse_query(&query_bytes(b"\x03foo\x00", rtype::TXT)).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q.header, true, 4096, 0, usize::MAX);
        w.question(&q);
        assert!(w.txt(Name::Question, 0, &[b'z'; 300]));
        w.finish(rcode::NOERROR, None);
        let rdata_at = 12 + 9 + 2 + 10;
        assert_eq!(buf[rdata_at], 255);
        assert_eq!(buf[rdata_at + 256], 45);
    }

    #[test]
    fn rejection_echoes_id_and_rd() {
        let header = Header::parse(&query_bytes(b"\x00", rtype::A)).unwrap();
        let mut buf = Vec::new();
        write_rejection(&mut buf, &header, rcode::REFUSED);
        assert_eq!(buf.len(), 12);
        assert_eq!(&buf[0..2], &[0x12, 0x34]);
        assert_eq!(buf[2], 0x81, "QR and RD, no AA");
        assert_eq!(buf[3], rcode::REFUSED);
    }
}
