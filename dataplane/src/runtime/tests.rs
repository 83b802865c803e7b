//! One serving core and the applier against the miniature control plane:
//! real sockets, real ring, real snapshot; DNS over UDP and TCP,
//! read-your-writes, blocking-query wake-ups and limits, shutdown.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::{Name as HName, RData, RecordType};
use proconsul_shared::agent_info::DataplaneLaunch;
use proconsul_shared::ipc::messages::{ControlError, ControlOp, ControlReply};
use proconsul_shared::{Command, CommandResult, State};

use super::core_inner::CoreInner;
use super::serve::{core_thread, follow_versions, CoreConfig};
use super::sockets::probe;
use super::test_control_plane::MiniControlPlane;
use crate::blocking::{WatchItem, WatchSet};
use crate::core::{Core, WaitOutcome};
use crate::replica::fixtures::{kv_set, register_node};
use crate::replica::{spawn_applier, ApplierConfig, Hub};

const WAIT: Duration = Duration::from_secs(10);

fn base_state() -> State {
    let mut s = State::default();
    register_node(&mut s, 2, "node1", "127.0.0.1", &[("consul-network-segment", "")]);
    kv_set(&mut s, 3, "seed", b"1");
    s
}

/// The applier attached to `cp`, with its first version published.
fn attached_hub(cp: &MiniControlPlane, cores: usize) -> (std::sync::Arc<Hub>, std::thread::JoinHandle<()>) {
    let hub = Hub::new(cores);
    let (tx, rx) = mpsc::sync_channel(1);
    let applier = spawn_applier(
        ApplierConfig {
            socket_path: cp.socket_path.clone(),
            launch_fingerprint: "test".into(),
            exit_with_control_plane: false,
        },
        hub.clone(),
        tx,
    )
    .unwrap();
    rx.recv_timeout(WAIT).expect("first version");
    (hub, applier)
}

fn dns_query(name: &str, qtype: RecordType, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(HQuery::query(HName::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

#[test]
fn a_core_serves_dns_over_udp_and_tcp_and_stops_on_shutdown() {
    let cp = MiniControlPlane::start(base_state());
    let (hub, applier) = attached_hub(&cp, 1);
    let plan = probe(&["127.0.0.1:0".parse().unwrap()], &["127.0.0.1:0".parse().unwrap()]).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let config = CoreConfig {
        id: 0,
        hub: hub.clone(),
        plan: plan.clone(),
        socket_path: cp.socket_path.clone(),
        parked_max: 16,
        http_max_conns_per_client: 7,
        client_conns: crate::runtime::client_conns::ClientConns::new(7),
        wake_hold_ms_max: 50,
    };
    let core = std::thread::spawn(move || core_thread(config, started_tx));
    assert_eq!(started_rx.recv_timeout(WAIT).unwrap(), Ok(0));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(WAIT)).unwrap();
    udp.send_to(&dns_query("node1.node.consul.", RecordType::A, 11), plan.dns[0])
        .unwrap();
    let mut buf = [0u8; 512];
    let n = udp.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 11);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.answers[0].data,
        RData::A("127.0.0.1".parse::<std::net::Ipv4Addr>().unwrap().into())
    );

    // Garbage gets no answer but does not stop the server.
    udp.send_to(&[1, 2, 3], plan.dns[0]).unwrap();
    udp.send_to(&dns_query("nope.node.consul.", RecordType::A, 12), plan.dns[0])
        .unwrap();
    let n = udp.recv(&mut buf).unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 12);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    let mut tcp = TcpStream::connect(plan.dns[0]).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    for id in [21u16, 22] {
        let q = dns_query("NODE1.node.dc1.consul.", RecordType::ANY, id);
        tcp.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
        tcp.write_all(&q).unwrap();
    }
    for id in [21u16, 22] {
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).unwrap();
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut msg).unwrap();
        let m = Message::from_vec(&msg).unwrap();
        assert_eq!(m.metadata.id, id, "answers in order on one connection");
        assert_eq!(m.answers.len(), 2, "A and the segment TXT");
    }

    let stopping = Instant::now();
    hub.request_shutdown(0);
    core.join().unwrap();
    applier.join().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(1), "prompt shutdown");
    drop(cp);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

fn set(key: &str) -> ControlOp {
    ControlOp::Write(Command::KvSet {
        key: key.into(),
        value: key.as_bytes().to_vec(),
        flags: 0,
    })
}

#[test]
fn writes_are_visible_on_return_and_wake_exactly_their_watchers() {
    let cp = MiniControlPlane::start(base_state());
    let (hub, applier) = attached_hub(&cp, 1);
    let first = hub.latest().unwrap();
    let core = Core::new(CoreInner::new(0, hub.clone(), &first, cp.socket_path.clone(), 2));
    let h = hub.clone();
    let cp_index = || cp.index();
    block_on(async move {
        let follower = core.clone();
        monoio::spawn(async move { follow_versions(&follower, &h).await });

        let index = core.view().state.index();
        assert!(core.leader_status().known_leader);
        assert_eq!(
            core.http_max_conns_per_client(),
            super::HTTP_MAX_CONNS_PER_CLIENT_DEFAULT
        );

        // A watcher of "x" and one of an unrelated key.
        let watcher = core.clone();
        let woken = monoio::spawn(async move {
            let watch = WatchSet::one(WatchItem::KvKey("x".into()));
            let started = Instant::now();
            let outcome = watcher.wait_change(&watch, index, Instant::now() + WAIT).await;
            (outcome, started.elapsed())
        });
        let bystander = core.clone();
        let unrelated = monoio::spawn(async move {
            let watch = WatchSet::one(WatchItem::KvKey("other".into()));
            let deadline = Instant::now() + Duration::from_millis(300);
            bystander.wait_change(&watch, index, deadline).await
        });
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(core.inner().parked_queries(), 2);
        // The cap is 2: a third blocking query is answered at once.
        let third = core
            .wait_change(&WatchSet::one(WatchItem::Nodes), index, Instant::now() + WAIT)
            .await;
        assert_eq!(third, WaitOutcome::Overloaded);

        let reply = core.request(set("x")).await.unwrap();
        let ControlReply::Written { index: written, result } = reply else {
            panic!("expected Written, got {reply:?}");
        };
        assert_eq!(result, CommandResult::Bool(true));
        assert!(core.view().state.index() >= written, "read-your-writes");
        assert_eq!(cp_index(), written);
        assert_eq!(core.view().state.kv.get("x").unwrap().value, b"x");

        let (outcome, waited) = woken.await;
        assert_eq!(outcome, WaitOutcome::Changed);
        assert!(waited < WAIT);
        assert_eq!(
            unrelated.await,
            WaitOutcome::TimedOut,
            "other keys' watchers are not woken"
        );
        assert_eq!(core.inner().parked_queries(), 0);

        // Already past the index: no parking at all.
        let now = core
            .wait_change(
                &WatchSet::one(WatchItem::KvKey("x".into())),
                index,
                Instant::now() + WAIT,
            )
            .await;
        assert_eq!(now, WaitOutcome::Changed);
        // Deadline in the past: timed out at once.
        let past = core
            .wait_change(&WatchSet::one(WatchItem::KvKey("x".into())), written, Instant::now())
            .await;
        assert_eq!(past, WaitOutcome::TimedOut);

        let stats = core.request(ControlOp::Stats).await;
        assert!(matches!(stats, Ok(ControlReply::Stats(_))));
        hub.request_shutdown(0);
    });
    applier.join().unwrap();
    drop(cp);
}

#[test]
fn a_write_acknowledged_on_one_core_is_seen_by_every_other_core() {
    let cp = MiniControlPlane::start(base_state());
    let (hub, applier) = attached_hub(&cp, 2);
    let first = hub.latest().unwrap();
    let writer = Core::new(CoreInner::new(0, hub.clone(), &first, cp.socket_path.clone(), 4));
    let reader = Core::new(CoreInner::new(1, hub.clone(), &first, cp.socket_path.clone(), 4));
    let h = hub.clone();
    block_on(async move {
        let follower = writer.clone();
        monoio::spawn(async move { follow_versions(&follower, &h).await });
        for i in 0..50 {
            let key = format!("ryw/{i}");
            assert!(matches!(
                writer.request(set(&key)).await,
                Ok(ControlReply::Written { .. })
            ));
            // The reader core's own version task never runs in this test:
            // its next view must still carry the acknowledged write.
            assert!(
                reader.view().state.kv.get(&key).is_some(),
                "write {key} invisible on the other core"
            );
        }
    });
    hub.request_shutdown(0);
    applier.join().unwrap();
}

#[test]
fn requests_without_a_control_plane_fail_fast_with_no_leader() {
    let cp = MiniControlPlane::start(base_state());
    let (hub, applier) = attached_hub(&cp, 1);
    let first = hub.latest().unwrap();
    let missing = cp.dir.join("missing.sock");
    let core = Core::new(CoreInner::new(0, hub.clone(), &first, missing, 4));
    let started = Instant::now();
    let result = block_on(async move { core.request(set("y")).await });
    assert_eq!(result, Err(ControlError::no_leader()));
    assert!(started.elapsed() < Duration::from_secs(1));
    hub.request_shutdown(0);
    applier.join().unwrap();
}

fn launch_for(cp: &MiniControlPlane, http: std::net::SocketAddr, dns: std::net::SocketAddr) -> DataplaneLaunch {
    DataplaneLaunch {
        run_dir: cp.dir.to_string_lossy().into_owned(),
        http_addrs: vec![http],
        dns_addrs: vec![dns],
        threads: 2,
        log_level: "warn".into(),
        exit_with_control_plane: false,
        http_max_conns_per_client: 200,
        wake_hold_ms_max: 50,
    }
}

#[test]
fn run_serves_until_the_control_plane_says_shutdown() {
    let cp = MiniControlPlane::start(base_state());
    let plan = probe(&["127.0.0.1:0".parse().unwrap()], &["127.0.0.1:0".parse().unwrap()]).unwrap();
    let launch = launch_for(&cp, plan.http[0], plan.dns[0]);
    let pid_path = cp.dir.join("dataplane.pid");
    let runner = std::thread::spawn(move || crate::run(launch));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let started = Instant::now();
    let answer = loop {
        assert!(started.elapsed() < WAIT, "the data plane never answered");
        // Until the data plane has bound, a send may fail (ICMP port
        // unreachable is reported on the next call): retry within WAIT.
        if udp
            .send_to(&dns_query("node1.node.consul.", RecordType::A, 5), plan.dns[0])
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let mut buf = [0u8; 512];
        if let Ok(n) = udp.recv(&mut buf) {
            break Message::from_vec(&buf[..n]).unwrap();
        }
    };
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        std::process::id().to_string()
    );
    assert!(TcpStream::connect(plan.http[0]).is_ok(), "the HTTP port accepts");

    // The control plane going away sends `Shutdown` first: exit 0, fast.
    let stopping = Instant::now();
    let dir = cp.dir.clone();
    drop(cp);
    assert_eq!(runner.join().unwrap(), 0);
    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert!(!dir.join("dataplane.pid").exists(), "the pid file is removed at exit");
}

#[test]
fn run_refuses_a_port_held_by_another_process() {
    let cp = MiniControlPlane::start(base_state());
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dns = probe(&[], &["127.0.0.1:0".parse().unwrap()]).unwrap().dns[0];
    let launch = launch_for(&cp, held.local_addr().unwrap(), dns);
    assert_eq!(crate::run(launch), 1);
    assert!(
        !cp.dir.join("dataplane.pid").exists(),
        "no pid file when the start fails"
    );
}
