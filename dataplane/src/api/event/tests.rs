use proconsul_shared::command::{CatalogRegistration, NodeRegistration};
use proconsul_shared::ipc::messages::{ControlOp, ControlReply};
use proconsul_shared::state::{ServiceInstance, UserEvent};
use proconsul_shared::{Command, CommandResult};

use super::uuid::uuid_index;
use super::{fire, list, render_fired};
use crate::api::test_support::{leader, request, view_with};
use crate::api::{render_reply, Outcome, ReplyKind, Response};
use crate::blocking::WatchItem;

fn event(id: &str, name: &str) -> UserEvent {
    UserEvent {
        id: id.into(),
        name: name.into(),
        version: 1,
        ..UserEvent::default()
    }
}

const ID_A: &str = "00000000-0000-4000-8000-00000000000a";
const ID_B: &str = "00000000-0000-4000-8000-00000000000b";

fn ready(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Ready(r) => r,
        other => panic!("not ready: {other:?}"),
    }
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn header<'r>(r: &'r Response, name: &str) -> Option<&'r str> {
    r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn web_on_node1() -> Command {
    Command::CatalogRegister(CatalogRegistration {
        node: NodeRegistration {
            node: "node1".into(),
            address: "127.0.0.1".into(),
            id: String::new(),
            datacenter: String::new(),
            tagged_addresses: Default::default(),
            meta: Default::default(),
        },
        skip_node_update: false,
        service: Some(ServiceInstance {
            node: "node1".into(),
            id: "web-1".into(),
            service: "web".into(),
            tags: vec!["blue".into()],
            ..ServiceInstance::default()
        }),
        checks: Vec::new(),
    })
}

#[test]
fn fire_validates_then_forwards_an_event_write() {
    let view = view_with(&[]);
    let req = request("PUT", "/v1/event/fire/deploy", "node=web.*", b"v2");
    let Outcome::Forward(f) = fire(&req, "deploy", &view, leader(), [7; 16]) else {
        panic!("a valid event is a write");
    };
    let ControlOp::Write(Command::EventFire(e)) = &f.op else {
        panic!("{f:?}");
    };
    assert_eq!(e.name, "deploy");
    assert_eq!(e.payload.as_deref(), Some(&b"v2"[..]));
    assert_eq!(e.node_filter, "web.*");
    assert_eq!(e.version, 1);
    assert_eq!(e.id.len(), 36);
    assert!(matches!(f.reply, ReplyKind::EventFired { .. }));
}

#[test]
fn fire_refuses_bad_events_with_consuls_messages() {
    let view = view_with(&[]);
    let r = ready(fire(
        &request("PUT", "/v1/event/fire/", "", b""),
        "",
        &view,
        leader(),
        [1; 16],
    ));
    assert_eq!((r.status, r.body.as_slice()), (400, &b"Missing name"[..]));
    let r = ready(fire(
        &request("PUT", "/v1/event/fire/x", "tag=v1", b""),
        "x",
        &view,
        leader(),
        [1; 16],
    ));
    assert_eq!(r.status, 500);
    assert_eq!(r.body, b"Cannot provide tag filter without service filter");
    let r = ready(fire(
        &request("PUT", "/v1/event/fire/x", "node=(", b""),
        "x",
        &view,
        leader(),
        [1; 16],
    ));
    assert_eq!(r.status, 500);
    assert!(String::from_utf8_lossy(&r.body).starts_with("Invalid node filter: "));
    let big = vec![b'x'; 600];
    let r = ready(fire(
        &request("PUT", "/v1/event/fire/x", "", &big),
        "x",
        &view,
        leader(),
        [1; 16],
    ));
    assert_eq!(r.status, 500);
    assert!(String::from_utf8_lossy(&r.body).contains("exceeds configured limit of 512 bytes"));
    let r = ready(fire(
        &request("PUT", "/v1/event/fire/x", "dc=dc9", b""),
        "x",
        &view,
        leader(),
        [1; 16],
    ));
    assert_eq!(r.status, 500, "another datacenter");
}

#[test]
fn the_fire_answer_is_the_applied_event_with_ltime_zero() {
    let mut fired = event(ID_A, "deploy");
    fired.payload = Some(b"hi".to_vec());
    let view = view_with(&[Command::EventFire(fired)]);
    let (id_high, id_low) = proconsul_shared::state::uuid_halves(ID_A).unwrap();
    let r = render_fired(&view, 1, (id_high, id_low), false);
    assert_eq!(r.status, 200);
    let v = json(&r);
    assert_eq!(v["ID"], ID_A);
    assert_eq!(v["Payload"], "aGk=");
    assert_eq!(v["LTime"], 0);
    assert_eq!(v["Version"], 1);
    let kind = ReplyKind::EventFired {
        pretty: false,
        id_high,
        id_low,
    };
    let written = Ok(ControlReply::Written {
        index: 1,
        result: CommandResult::Done,
    });
    assert_eq!(render_reply(kind, written, &view).status, 200);
    assert_eq!(
        render_fired(&view, 2, (id_high, id_low), false).status,
        500,
        "not applied here"
    );
}

#[test]
fn list_shows_events_oldest_first_with_the_uuid_index() {
    let view = view_with(&[
        Command::EventFire(event(ID_A, "deploy")),
        Command::EventFire(event(ID_B, "restart")),
    ]);
    let r = ready(list(&request("GET", "/v1/event/list", "", b""), &view));
    let v = json(&r);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["ID"], ID_A);
    assert_eq!(v[0]["LTime"], 1);
    assert_eq!(v[0]["Payload"], serde_json::Value::Null);
    assert_eq!(v[1]["ID"], ID_B);
    assert_eq!(
        header(&r, "X-Consul-Index"),
        Some(uuid_index(ID_B).unwrap().to_string().as_str())
    );
    let r = ready(list(&request("GET", "/v1/event/list", "name=deploy", b""), &view));
    assert_eq!(json(&r).as_array().unwrap().len(), 1);
    assert_eq!(
        header(&r, "X-Consul-Index"),
        Some(uuid_index(ID_A).unwrap().to_string().as_str())
    );
    let r = ready(list(&request("GET", "/v1/event/list", "name=nothing", b""), &view));
    assert_eq!(r.body, b"[]");
    assert_eq!(header(&r, "X-Consul-Index"), Some("1"));
}

#[test]
fn filters_apply_to_the_listing_agent() {
    let mut elsewhere = event(ID_A, "a");
    elsewhere.node_filter = "^node2$".into();
    let mut here = event(ID_B, "b");
    here.node_filter = "node".into();
    let mut web_blue = event("00000000-0000-4000-8000-00000000000c", "c");
    web_blue.service_filter = "^web$".into();
    web_blue.tag_filter = "blu".into();
    let mut web_green = event("00000000-0000-4000-8000-00000000000d", "d");
    web_green.service_filter = "web".into();
    web_green.tag_filter = "green".into();
    let mut db = event("00000000-0000-4000-8000-00000000000e", "e");
    db.service_filter = "db".into();
    let view = view_with(&[
        web_on_node1(),
        Command::EventFire(elsewhere),
        Command::EventFire(here),
        Command::EventFire(web_blue),
        Command::EventFire(web_green),
        Command::EventFire(db),
    ]);
    let r = ready(list(&request("GET", "/v1/event/list", "", b""), &view));
    let names: Vec<String> = json(&r)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["b", "c"]);
}

#[test]
fn a_list_at_the_current_index_blocks_on_events_only() {
    let view = view_with(&[Command::EventFire(event(ID_A, "deploy"))]);
    let current = uuid_index(ID_A).unwrap();
    let q = format!("index={current}&wait=2s");
    match list(&request("GET", "/v1/event/list", &q, b""), &view) {
        Outcome::Block(b) => {
            assert_eq!(b.min_index, 1, "wakes once the events table moves past its last event");
            assert_eq!(b.watch.items, vec![WatchItem::Events]);
        }
        other => panic!("{other:?}"),
    }
    let q = format!("index={}", current ^ 1);
    assert_eq!(
        ready(list(&request("GET", "/v1/event/list", &q, b""), &view)).status,
        200
    );
}
