//! Question name → query form (pure), following Consul's v1 rules
//! (DNS.md §1): lower-case, strip the domain, scan right to left for the
//! first keyword label (`service`, `connect`, `virtual`, `ingress`,
//! `node`, `query`, `addr`; for SRV also a label starting with `_`);
//! labels left of it are the query parts, labels right of it the
//! locality.

use crate::dns::wire::QName;

/// Where a lookup is aimed (the labels right of the keyword).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Locality<'a> {
    /// `<dc>` or `<dc>.dc`.
    pub datacenter: Option<&'a str>,
    /// `<peer>.peer` (or the bare label of `.virtual`).
    pub peer: Option<&'a str>,
    /// `<ns>.ns`.
    pub namespace: Option<&'a str>,
    /// `<partition>.ap`.
    pub partition: Option<&'a str>,
    /// `<group>.sg`.
    pub sameness_group: Option<&'a str>,
}

/// What a name inside the domain asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryForm<'a> {
    /// The domain itself (`consul.`).
    Apex,
    /// `<node>.node[.<dc>]`. Node names may contain dots.
    Node {
        /// The node name, dots allowed.
        name: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `[<tag>.]<service>.service[.<dc>]` and the RFC 2782 form
    /// `_<service>._<tag>[.service][.<dc>]` (tag `tcp` = no filter).
    Service {
        /// The service name.
        service: &'a str,
        /// Tag filter, if any.
        tag: Option<&'a str>,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `<service>.connect`.
    Connect {
        /// The service name.
        service: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `<service>.ingress`.
    Ingress {
        /// The service name.
        service: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `<service>.virtual[.<peer>]`.
    Virtual {
        /// The service name.
        service: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `<name-or-id>.query[.<dc>]`.
    PreparedQuery {
        /// Query name or id (dots allowed).
        name: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// `<hex>.addr[.<dc>]`.
    Addr {
        /// 8 or 32 hex digits.
        hex: &'a str,
        /// Where to look.
        locality: Locality<'a>,
    },
    /// In the domain but not a valid lookup (answered NXDOMAIN).
    Invalid,
}

/// A question name classified against the served domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameClass<'a> {
    /// Not under the domain (refused: no recursors).
    Outside,
    /// Under the domain.
    Inside(QueryForm<'a>),
}

/// The served domain as lower-case labels (`["consul"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    labels: Vec<String>,
    /// Dotted form without the trailing dot (`consul`).
    dotted: String,
}

impl Domain {
    /// Parses a configured domain (`consul.`, `Example.COM`, `.consul.`).
    /// An empty or invalid domain falls back to `consul`.
    pub fn new(configured: &str) -> Domain {
        let labels: Vec<String> = configured
            .split('.')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_ascii_lowercase())
            .collect();
        if labels.is_empty() || labels.iter().any(|l| l.len() > 63) {
            return Domain::new("consul.");
        }
        let dotted = labels.join(".");
        Domain { labels, dotted }
    }

    /// Dotted form without the trailing dot.
    pub fn dotted(&self) -> &str {
        &self.dotted
    }

    /// Number of labels.
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }

    /// Whether `qname` ends with this domain.
    pub fn contains(&self, qname: &QName) -> bool {
        let n = qname.label_count();
        let k = self.labels.len();
        n >= k && (0..k).all(|i| qname.label(n - k + i) == self.labels[i].as_bytes())
    }
}

const KEYWORDS: [&[u8]; 7] = [
    b"service", b"connect", b"virtual", b"ingress", b"node", b"query", b"addr",
];

/// Classifies `qname` for a question of type `qtype`.
pub fn classify<'a>(qname: &'a QName, domain: &Domain, srv_question: bool) -> NameClass<'a> {
    if !domain.contains(qname) {
        return NameClass::Outside;
    }
    let n = qname.label_count() - domain.label_count();
    if n == 0 {
        return NameClass::Inside(QueryForm::Apex);
    }
    NameClass::Inside(classify_labels(qname, n, srv_question))
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Classifies the first `n` labels of `qname` (the domain already stripped).
fn classify_labels(qname: &QName, n: usize, srv_question: bool) -> QueryForm<'_> {
    let mut keyword_at = None;
    for i in (0..n).rev() {
        let label = qname.label(i);
        if KEYWORDS.contains(&label) {
            keyword_at = Some((i, label));
            break;
        }
        if srv_question && label.first() == Some(&b'_') {
            // RFC 2782 without `.service`: the `_` labels are the query
            // parts, everything after them the locality.
            return rfc2782_service(qname, i + 1, n).unwrap_or(QueryForm::Invalid);
        }
    }
    let Some((k, keyword)) = keyword_at else {
        return QueryForm::Invalid;
    };
    let Some(locality) = parse_locality(qname, k + 1, n, keyword == b"virtual") else {
        return QueryForm::Invalid;
    };
    if k == 0 {
        return QueryForm::Invalid;
    }
    if keyword == b"service" {
        // The hot path: `service_form` checks its own labels' text, which
        // together are the query parts (a `.` cannot split a UTF-8
        // sequence, so the parts are text exactly when each label is).
        return service_form(qname, k, locality).unwrap_or(QueryForm::Invalid);
    }
    let Some(parts) = text(qname.joined(0, k)) else {
        return QueryForm::Invalid;
    };
    match keyword {
        b"node" => QueryForm::Node { name: parts, locality },
        b"connect" if k == 1 => QueryForm::Connect {
            service: parts,
            locality,
        },
        b"ingress" if k == 1 => QueryForm::Ingress {
            service: parts,
            locality,
        },
        b"virtual" if k == 1 => QueryForm::Virtual {
            service: parts,
            locality,
        },
        b"query" => {
            let name = if k == 2 && is_underscored(qname.label(0)) && is_underscored(qname.label(1)) {
                // `_<query>._<proto>.query`: the protocol label is ignored.
                text(&qname.label(0)[1..])
            } else {
                Some(parts)
            };
            match name {
                Some(name) if !name.is_empty() => QueryForm::PreparedQuery { name, locality },
                _ => QueryForm::Invalid,
            }
        }
        b"addr" if k == 1 => QueryForm::Addr { hex: parts, locality },
        _ => QueryForm::Invalid,
    }
}

fn is_underscored(label: &[u8]) -> bool {
    label.len() > 1 && label[0] == b'_'
}

/// `<service>.service`, `<tag...>.<service>.service` or the RFC 2782
/// `_<service>._<tag>.service`; the query parts are labels `0..k`.
fn service_form<'a>(qname: &'a QName, k: usize, locality: Locality<'a>) -> Option<QueryForm<'a>> {
    if k == 2 && is_underscored(qname.label(0)) && is_underscored(qname.label(1)) {
        return rfc2782(qname, locality);
    }
    let service = text(qname.label(k - 1))?;
    let tag = if k > 1 {
        Some(text(qname.joined(0, k - 1))?)
    } else {
        None
    };
    Some(QueryForm::Service { service, tag, locality })
}

/// RFC 2782 form with the query parts `0..parts_end` and the locality
/// `parts_end..n`.
fn rfc2782_service(qname: &QName, parts_end: usize, n: usize) -> Option<QueryForm<'_>> {
    if parts_end != 2 || !is_underscored(qname.label(0)) || !is_underscored(qname.label(1)) {
        return None;
    }
    let locality = parse_locality(qname, parts_end, n, false)?;
    rfc2782(qname, locality)
}

fn rfc2782<'a>(qname: &'a QName, locality: Locality<'a>) -> Option<QueryForm<'a>> {
    let service = text(&qname.label(0)[1..])?;
    let tag = text(&qname.label(1)[1..])?;
    Some(QueryForm::Service {
        service,
        tag: if tag == "tcp" { None } else { Some(tag) },
        locality,
    })
}

/// Labels `from..to` as a locality: nothing; one bare label (datacenter,
/// or peer for `.virtual`); or `<value>.<key>` pairs with keys `dc`,
/// `peer`, `ns`, `ap`, `sg`.
fn parse_locality(qname: &QName, from: usize, to: usize, bare_is_peer: bool) -> Option<Locality<'_>> {
    let mut locality = Locality::default();
    let count = to - from;
    if count == 0 {
        return Some(locality);
    }
    if count == 1 {
        let value = text(qname.label(from))?;
        if bare_is_peer {
            locality.peer = Some(value);
        } else {
            locality.datacenter = Some(value);
        }
        return Some(locality);
    }
    if !count.is_multiple_of(2) {
        return None;
    }
    for pair in (from..to).step_by(2) {
        let value = text(qname.label(pair))?;
        let slot = match qname.label(pair + 1) {
            b"dc" => &mut locality.datacenter,
            b"peer" => &mut locality.peer,
            b"ns" => &mut locality.namespace,
            b"ap" => &mut locality.partition,
            b"sg" => &mut locality.sameness_group,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    Some(locality)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::{parse_query, rtype};

    /// Builds a QName by parsing a real query for `name`.
    fn qname(name: &str) -> QName {
        let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            p.push(label.len() as u8);
            p.extend_from_slice(label.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&rtype::A.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        parse_query(&p).unwrap().qname
    }

    fn form(name: &str, srv: bool) -> String {
        let q = qname(name);
        format!("{:?}", classify(&q, &Domain::new("consul."), srv))
    }

    fn dc(d: &str) -> Locality<'_> {
        Locality {
            datacenter: Some(d),
            ..Locality::default()
        }
    }

    #[test]
    fn domain_parsing_normalises() {
        assert_eq!(Domain::new("Consul.").dotted(), "consul");
        assert_eq!(Domain::new(".example.COM").dotted(), "example.com");
        assert_eq!(Domain::new("").dotted(), "consul");
        assert_eq!(Domain::new("a.b.").label_count(), 2);
    }

    #[test]
    fn outside_and_apex() {
        let d = Domain::new("consul.");
        assert_eq!(classify(&qname("example.com"), &d, false), NameClass::Outside);
        assert_eq!(classify(&qname("consulx"), &d, false), NameClass::Outside);
        assert_eq!(classify(&qname(""), &d, false), NameClass::Outside);
        assert_eq!(
            classify(&qname("CONSUL"), &d, false),
            NameClass::Inside(QueryForm::Apex)
        );
        let multi = Domain::new("corp.example.");
        assert_eq!(classify(&qname("x.node.corp.example"), &multi, false), {
            NameClass::Inside(QueryForm::Node {
                name: "x",
                locality: Locality::default(),
            })
        });
        assert_eq!(classify(&qname("x.node.consul"), &multi, false), NameClass::Outside);
    }

    #[test]
    fn node_forms() {
        let d = Domain::new("consul.");
        let q = qname("Foo.NODE.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Node {
                name: "foo",
                locality: Locality::default()
            })
        );
        let q = qname("foo.bar.node.dc1.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Node {
                name: "foo.bar",
                locality: dc("dc1")
            })
        );
        let q = qname("foo.node.dc2.dc.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Node {
                name: "foo",
                locality: dc("dc2")
            })
        );
        assert_eq!(form("node.consul", false), "Inside(Invalid)");
        assert_eq!(
            form("foo.node.a.b.c.consul", false),
            "Inside(Invalid)",
            "too many suffix labels"
        );
        assert_eq!(
            form("foo.node.a.bogus.consul", false),
            "Inside(Invalid)",
            "unknown locality key"
        );
        assert_eq!(
            form("foo.node.a.dc.b.dc.consul", false),
            "Inside(Invalid)",
            "repeated key"
        );
        assert_eq!(form("foo.consul", false), "Inside(Invalid)", "no keyword");
    }

    #[test]
    fn rightmost_keyword_wins() {
        let d = Domain::new("consul.");
        let q = qname("service.node.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Node {
                name: "service",
                locality: Locality::default()
            })
        );
    }

    #[test]
    fn service_forms() {
        let d = Domain::new("consul.");
        let q = qname("web.service.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Service {
                service: "web",
                tag: None,
                locality: Locality::default()
            })
        );
        let q = qname("a.b.web.service.dc1.consul");
        assert_eq!(
            classify(&q, &d, false),
            NameClass::Inside(QueryForm::Service {
                service: "web",
                tag: Some("a.b"),
                locality: dc("dc1")
            })
        );
        let q = qname("_web._tcp.service.consul");
        assert_eq!(
            classify(&q, &d, true),
            NameClass::Inside(QueryForm::Service {
                service: "web",
                tag: None,
                locality: Locality::default()
            })
        );
        let q = qname("_web._rails.dc1.consul");
        assert_eq!(
            classify(&q, &d, true),
            NameClass::Inside(QueryForm::Service {
                service: "web",
                tag: Some("rails"),
                locality: dc("dc1")
            })
        );
        assert_eq!(
            form("_web._tcp.consul", false),
            "Inside(Invalid)",
            "bare RFC 2782 needs SRV"
        );
    }

    #[test]
    fn other_keywords() {
        assert!(form("db.connect.consul", false).starts_with("Inside(Connect"));
        assert!(form("db.ingress.consul", false).starts_with("Inside(Ingress"));
        assert!(form("db.virtual.peer1.consul", false).contains("peer: Some(\"peer1\")"));
        assert!(form("my.query.name.query.consul", false).contains("name: \"my.query.name\""));
        assert!(form("_geo._tcp.query.consul", false).contains("name: \"geo\""));
        assert!(form("c000020a.addr.dc1.consul", false).contains("hex: \"c000020a\""));
        assert_eq!(form("a.b.connect.consul", false), "Inside(Invalid)");
        assert_eq!(form("a.b.addr.consul", false), "Inside(Invalid)");
    }
}
