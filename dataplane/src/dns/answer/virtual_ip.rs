//! `<service>.virtual[.<peer>]` (DNS.md §1): the virtual IP the catalog
//! gave a Connect-enabled service (see `proconsul_shared::state::
//! VirtualIpTable`), as one A record with the node TTL. As in Consul the
//! A record is the answer whatever the question type; a service without
//! one, or a peer (no peering here), is NXDOMAIN.

use crate::dns::wire::{rcode, Name, ResponseWriter};

use super::Ctx;

impl Ctx<'_> {
    /// Answers `<service>.virtual`.
    pub(super) fn virtual_ip(&self, w: &mut ResponseWriter<'_>, service: &str) -> u8 {
        match self.state.virtual_ips.get(service) {
            Some(ip) => {
                w.a(Name::Question, self.zone.node_ttl_s, ip);
                rcode::NOERROR
            }
            None => self.nxdomain(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::{Name as HName, RData, RecordType};
    use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
    use proconsul_shared::state::{ServiceConnect, ServiceInstance};
    use proconsul_shared::{Command, State};

    use crate::dns::answer::{respond, Outcome, Scratch, Transport};
    use crate::dns::zone::Zone;
    use crate::replica::fixtures::test_agent;

    fn ask(state: &State, name: &str, qtype: RecordType) -> Message {
        let mut m = Message::new(7, MessageType::Query, OpCode::Query);
        m.add_query(HQuery::query(HName::from_ascii(name).unwrap(), qtype));
        let mut out = Vec::new();
        let zone = Zone::from_agent(&test_agent());
        let outcome = respond(
            &m.to_vec().unwrap(),
            Transport::Udp,
            state,
            &zone,
            1,
            &mut Scratch::default(),
            &mut out,
        );
        assert_eq!(outcome, Outcome::Send);
        Message::from_vec(&out).unwrap()
    }

    fn native_state() -> State {
        let mut state = State::default();
        let reg = CatalogRegistration {
            node: NodeRegistration {
                id: String::new(),
                node: "n1".into(),
                address: "10.0.0.1".into(),
                datacenter: "dc1".into(),
                tagged_addresses: Default::default(),
                meta: Default::default(),
            },
            skip_node_update: false,
            service: Some(ServiceInstance {
                id: "api".into(),
                service: "api".into(),
                port: 80,
                connect: ServiceConnect { native: true },
                ..ServiceInstance::default()
            }),
            checks: Vec::new(),
        };
        state.apply_command(1, &Command::CatalogRegister(reg));
        state
    }

    #[test]
    fn a_connect_enabled_service_answers_its_virtual_ip_with_the_node_ttl() {
        let state = native_state();
        for qtype in [RecordType::A, RecordType::SRV] {
            let m = ask(&state, "API.virtual.consul.", qtype);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(m.answers.len(), 1, "{qtype:?}");
            assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(240, 0, 0, 1).into()));
            assert_eq!(m.answers[0].ttl, Zone::from_agent(&test_agent()).node_ttl_s);
        }
    }

    #[test]
    fn unknown_services_and_peers_are_nxdomain() {
        let state = native_state();
        for name in ["web.virtual.consul.", "api.virtual.peer1.consul."] {
            let m = ask(&state, name, RecordType::A);
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
            assert!(m.answers.is_empty());
        }
    }
}
