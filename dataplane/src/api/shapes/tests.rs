//! Byte-exact renderings of each shape against Consul's output.

use std::collections::BTreeMap;

use proconsul_shared::state::{
    CheckDefinition, CheckStatus, HealthCheck, Node, ServiceAddress, ServiceInstance, Weights,
};

use super::*;

fn render(f: impl FnOnce(&mut JsonWriter<'_>)) -> String {
    let mut out = Vec::new();
    let mut w = JsonWriter::new(&mut out, false);
    f(&mut w);
    w.finish();
    String::from_utf8(out).unwrap()
}

fn node() -> Node {
    Node {
        id: "40e4a748-2192-161a-0510-9bf59fe950b5".into(),
        node: "foobar".into(),
        address: "192.168.10.10".into(),
        datacenter: "dc1".into(),
        tagged_addresses: BTreeMap::from([
            ("lan".to_string(), "192.168.10.10".to_string()),
            ("wan".to_string(), "10.0.10.10".to_string()),
        ]),
        meta: BTreeMap::new(),
        create_index: 5,
        modify_index: 6,
    }
}

fn instance() -> ServiceInstance {
    ServiceInstance {
        node: "foobar".into(),
        id: "web-1".into(),
        service: "web".into(),
        kind: String::new(),
        tags: vec!["v1".into()],
        address: String::new(),
        tagged_addresses: BTreeMap::new(),
        meta: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        port: 8080,
        socket_path: String::new(),
        weights: Weights::default(),
        enable_tag_override: false,
        create_index: 7,
        modify_index: 8,
        ..ServiceInstance::default()
    }
}

#[test]
fn node_shape() {
    assert_eq!(
        render(|w| write_node(w, &node())),
        r#"{"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"foobar","Address":"192.168.10.10","Datacenter":"dc1","TaggedAddresses":{"lan":"192.168.10.10","wan":"10.0.10.10"},"Meta":{},"CreateIndex":5,"ModifyIndex":6}"#
    );
}

#[test]
fn catalog_service_shape() {
    assert_eq!(
        render(|w| write_catalog_service(w, Some(&node()), &instance())),
        concat!(
            r#"{"ID":"40e4a748-2192-161a-0510-9bf59fe950b5","Node":"foobar","Address":"192.168.10.10","Datacenter":"dc1","#,
            r#""TaggedAddresses":{"lan":"192.168.10.10","wan":"10.0.10.10"},"NodeMeta":{},"ServiceKind":"","ServiceID":"web-1","#,
            r#""ServiceName":"web","ServiceTags":["v1"],"ServiceAddress":"","ServiceWeights":{"Passing":1,"Warning":1},"#,
            r#""ServiceMeta":{"env":"prod"},"ServicePort":8080,"ServiceSocketPath":"","ServiceEnableTagOverride":false,"#,
            r#""ServiceProxy":{"Mode":"","MeshGateway":{},"Expose":{}},"ServiceConnect":{},"ServiceLocality":null,"#,
            r#""CreateIndex":7,"ModifyIndex":8}"#
        )
    );
}

#[test]
fn catalog_service_with_tagged_addresses() {
    let mut i = instance();
    i.tagged_addresses.insert(
        "wan".into(),
        ServiceAddress {
            address: "198.18.0.1".into(),
            port: 512,
        },
    );
    let s = render(|w| write_catalog_service(w, Some(&node()), &i));
    assert!(s.contains(
        r#""ServiceAddress":"","ServiceTaggedAddresses":{"wan":{"Address":"198.18.0.1","Port":512}},"ServiceWeights""#
    ));
}

#[test]
fn node_service_shape_omits_empty_optional_fields() {
    assert_eq!(
        render(|w| write_node_service(w, &instance())),
        concat!(
            r#"{"ID":"web-1","Service":"web","Tags":["v1"],"Address":"","Meta":{"env":"prod"},"Port":8080,"#,
            r#""Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"#,
            r#""Proxy":{"Mode":"","MeshGateway":{},"Expose":{}},"Connect":{},"PeerName":"","CreateIndex":7,"ModifyIndex":8}"#
        )
    );
    let mut i = instance();
    i.port = 0;
    i.tags.clear();
    i.kind = "connect-proxy".into();
    let s = render(|w| write_node_service(w, &i));
    assert!(s.starts_with(r#"{"Kind":"connect-proxy","ID":"web-1","Service":"web","Tags":[],"#));
    assert!(!s.contains("\"Port\""));
}

#[test]
fn serf_like_check_has_an_empty_definition() {
    let check = HealthCheck {
        node: "foobar".into(),
        check_id: "serfHealth".into(),
        name: "Serf Health Status".into(),
        status: CheckStatus::Passing,
        output: "Agent alive and reachable".into(),
        create_index: 12,
        modify_index: 12,
        ..HealthCheck::default()
    };
    assert_eq!(
        render(|w| write_health_check(w, &check)),
        concat!(
            r#"{"Node":"foobar","CheckID":"serfHealth","Name":"Serf Health Status","Status":"passing","Notes":"","#,
            r#""Output":"Agent alive and reachable","ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","#,
            r#""Interval":"","Timeout":"","ExposedPort":0,"Definition":{},"CreateIndex":12,"ModifyIndex":12}"#
        )
    );
}

#[test]
fn http_check_definition_uses_go_durations() {
    let check = HealthCheck {
        node: "foobar".into(),
        check_id: "service:web-1".into(),
        name: "Service 'web' check".into(),
        status: CheckStatus::Critical,
        service_id: "web-1".into(),
        service_name: "web".into(),
        service_tags: vec!["v1".into()],
        check_type: "http".into(),
        definition: CheckDefinition {
            http: "http://127.0.0.1:8080/health".into(),
            header: BTreeMap::from([("X-A".to_string(), vec!["1".to_string(), "2".to_string()])]),
            method: "GET".into(),
            interval_ns: 10_000_000_000,
            timeout_ns: 1_500_000_000,
            deregister_critical_service_after_ns: 90_000_000_000,
            tls_skip_verify: true,
            ..CheckDefinition::default()
        },
        ..HealthCheck::default()
    };
    let s = render(|w| write_health_check(w, &check));
    assert!(
        s.contains(r#""Type":"http","Interval":"10s","Timeout":"1.5s","ExposedPort":0,"#),
        "{s}"
    );
    assert!(
        s.contains(concat!(
            r#""Definition":{"Interval":"10s","Timeout":"1.5s","DeregisterCriticalServiceAfter":"1m30s","#,
            r#""HTTP":"http://127.0.0.1:8080/health","TLSSkipVerify":true,"Header":{"X-A":["1","2"]},"Method":"GET"}"#
        )),
        "{s}"
    );
    assert!(s.contains(r#""ServiceTags":["v1"]"#));
}
