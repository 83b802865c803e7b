//! The applier against an in-process fake control plane: a real unix
//! socket, a real ring and real snapshot regions, no control-plane code.

use super::*;
use crate::replica::fixtures::{kv_set, register_node, test_agent};
use proconsul_shared::ipc::messages::ClusterStatus;
use proconsul_shared::limits::DELTA_RING_BYTES_MIN;
use proconsul_shared::shm::ring::{Heartbeat, RingWriter};
use proconsul_shared::State;
use std::io::Write;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

fn temp_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("pc-applier-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The control plane's side of one attach connection.
struct FakeControlPlane {
    sock: UnixStream,
    ring: RingWriter,
    state: State,
}

impl FakeControlPlane {
    fn accept(listener: &UnixListener, epoch: u64, state: State) -> FakeControlPlane {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let hello: Hello = frame::read_blocking(&mut sock).unwrap();
        assert!(matches!(hello, Hello::Attach { .. }), "{hello:?}");
        let ring = RingWriter::create(DELTA_RING_BYTES_MIN, epoch).unwrap();
        let cp = FakeControlPlane { sock, ring, state };
        cp.beat(true);
        let attached = frame::encode(&ToDataplane::Attached {
            epoch,
            agent: Box::new(test_agent()),
        })
        .unwrap();
        fdpass::send_with_fds(cp.sock.as_fd(), &attached, &[cp.ring.region().fd()]).unwrap();
        cp.send_snapshot();
        cp
    }

    fn beat(&self, leader_known: bool) {
        self.ring.heartbeat(Heartbeat {
            unix_ms: unix_now_ms(),
            leader_known,
            last_contact_ms: 0,
        });
    }

    fn send_snapshot(&self) {
        let (region, meta) = snapshot_region::write(&self.state, self.ring.head()).unwrap();
        let msg = frame::encode(&ToDataplane::Snapshot { index: meta.index }).unwrap();
        fdpass::send_with_fds(self.sock.as_fd(), &msg, &[region.fd()]).unwrap();
    }

    fn set(&mut self, index: u64, key: &str) {
        let (_, delta) = self.state.apply_command(
            index,
            &proconsul_shared::Command::KvSet {
                key: key.into(),
                value: key.as_bytes().to_vec(),
                flags: 0,
            },
        );
        self.ring.append(index, &delta.encode()).unwrap();
    }

    fn send(&mut self, msg: &ToDataplane) {
        self.sock.write_all(&frame::encode(msg).unwrap()).unwrap();
    }

    /// The next message other than `Applied`.
    fn next_request(&mut self) -> FromDataplane {
        loop {
            let msg: FromDataplane = frame::read_blocking(&mut self.sock).unwrap();
            if !matches!(msg, FromDataplane::Applied { .. }) {
                return msg;
            }
        }
    }
}

struct Harness {
    dir: PathBuf,
    listener: UnixListener,
    hub: Arc<Hub>,
    ready: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Harness {
    fn start(exit_with_control_plane: bool) -> Harness {
        let dir = temp_dir();
        let path = dir.join("control.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let hub = Hub::new(2);
        let (tx, ready) = mpsc::sync_channel(1);
        let config = ApplierConfig {
            socket_path: path,
            launch_fingerprint: "test".into(),
            exit_with_control_plane,
        };
        let thread = spawn(config, hub.clone(), tx).unwrap();
        Harness {
            dir,
            listener,
            hub,
            ready,
            thread: Some(thread),
        }
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&Hub) -> bool) {
        let started = Instant::now();
        while !cond(&self.hub) {
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn index(&self) -> u64 {
        self.hub.latest().map_or(0, |v| v.state.index())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.hub.request_shutdown(0);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn base_state() -> State {
    let mut s = State::default();
    register_node(&mut s, 2, "node1", "127.0.0.1", &[("consul-network-segment", "")]);
    kv_set(&mut s, 3, "a", b"1");
    s
}

#[test]
fn attaches_maps_the_snapshot_and_follows_the_ring() {
    let h = Harness::start(false);
    let mut cp = FakeControlPlane::accept(&h.listener, 7, base_state());
    h.ready.recv_timeout(WAIT).expect("first version published");
    let first = h.hub.latest().unwrap();
    assert_eq!(first.state.index(), 3);
    assert_eq!(first.agent.node_name, "node1");
    assert!(first.leader.known_leader);
    assert!(first.changes.wake_all, "the first state wakes everyone");
    let mut changes = crate::blocking::ChangeSet::default();
    h.hub.feed(1).drain(&mut changes);
    assert!(changes.wake_all);

    cp.set(4, "b");
    cp.set(5, "c");
    h.wait_for("index 5", |hub| hub.latest().unwrap().state.index() == 5);
    let v = h.hub.latest().unwrap();
    assert_eq!(v.state.kv.get("c").unwrap().value, b"c");
    let mut changes = crate::blocking::ChangeSet::default();
    h.hub.feed(1).drain(&mut changes);
    assert!(!changes.wake_all, "deltas carry precise changes");
    assert_eq!(changes.kv_keys, vec!["b".to_string(), "c".to_string()]);

    cp.send(&ToDataplane::Cluster(ClusterStatus {
        leader: Some("127.0.0.1:8300".into()),
        peers: vec!["127.0.0.1:8300".into()],
    }));
    h.wait_for("cluster status", |hub| hub.latest().unwrap().cluster.leader.is_some());
}

#[test]
fn a_bad_record_asks_for_a_snapshot_and_resyncs() {
    let h = Harness::start(false);
    let mut cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    cp.ring.append(4, b"this is not an archived delta").unwrap();
    match cp.next_request() {
        FromDataplane::NeedSnapshot { reason } => assert!(reason.contains("undecodable"), "{reason}"),
        other => panic!("expected NeedSnapshot, got {other:?}"),
    }
    // The control plane answers with a fresh snapshot past the bad record.
    kv_set(&mut cp.state, 9, "fresh", b"x");
    cp.send_snapshot();
    h.wait_for("resync to 9", |hub| hub.latest().unwrap().state.index() == 9);
    cp.set(10, "after");
    h.wait_for("index 10", |hub| hub.latest().unwrap().state.index() == 10);
}

#[test]
fn losing_the_control_plane_keeps_the_state_and_reattaches() {
    let h = Harness::start(false);
    let cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    drop(cp);
    h.wait_for("leader lost", |hub| !hub.latest().unwrap().leader.known_leader);
    let lost = h.hub.latest().unwrap();
    assert_eq!(lost.state.index(), 3, "the last state keeps serving");
    assert!(lost.leader.growing);
    assert!(!h.hub.is_shutdown());

    // A new control plane restored to a lower index: a restore.
    let mut low = State::default();
    kv_set(&mut low, 2, "old", b"");
    let _cp2 = FakeControlPlane::accept(&h.listener, 2, low);
    h.wait_for("restore", |hub| hub.latest().unwrap().restore_generation == 1);
    let v = h.hub.latest().unwrap();
    assert_eq!(v.state.index(), 2);
    assert!(v.leader.known_leader);
    assert_eq!(h.index(), 2);
}

#[test]
fn stale_heartbeat_means_no_known_leader() {
    let h = Harness::start(false);
    let cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    cp.ring.heartbeat(Heartbeat {
        unix_ms: unix_now_ms() - 10_000,
        leader_known: true,
        last_contact_ms: 0,
    });
    h.wait_for("stale heartbeat", |hub| !hub.latest().unwrap().leader.known_leader);
    cp.beat(true);
    h.wait_for("fresh heartbeat", |hub| hub.latest().unwrap().leader.known_leader);
}

#[test]
fn shutdown_message_stops_the_applier() {
    let mut h = Harness::start(false);
    let mut cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    cp.send(&ToDataplane::Shutdown);
    h.wait_for("shutdown", |hub| hub.is_shutdown());
    h.thread.take().unwrap().join().unwrap();
    assert_eq!(h.hub.exit_code(), 0);
}

#[test]
fn a_shutdown_followed_by_a_hang_up_is_still_a_shutdown() {
    let h = Harness::start(false);
    let mut cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    cp.send(&ToDataplane::Shutdown);
    drop(cp);
    h.wait_for("shutdown", |hub| hub.is_shutdown());
}

#[test]
fn dev_mode_exits_with_the_control_plane() {
    let h = Harness::start(true);
    let cp = FakeControlPlane::accept(&h.listener, 1, base_state());
    h.ready.recv_timeout(WAIT).unwrap();
    drop(cp);
    h.wait_for("exit with the control plane", |hub| hub.is_shutdown());
    assert_eq!(h.hub.exit_code(), 0);
}

#[test]
fn attach_is_retried_until_the_control_plane_appears() {
    let dir = temp_dir();
    let path = dir.join("control.sock");
    let hub = Hub::new(1);
    let (tx, ready) = mpsc::sync_channel(1);
    let config = ApplierConfig {
        socket_path: path.clone(),
        launch_fingerprint: "test".into(),
        exit_with_control_plane: false,
    };
    let thread = spawn(config, hub.clone(), tx).unwrap();
    std::thread::sleep(ATTACH_RETRY * 3);
    assert!(hub.latest().is_none(), "nothing to publish without a control plane");
    let listener = UnixListener::bind(&path).unwrap();
    let _cp = FakeControlPlane::accept(&listener, 1, base_state());
    ready.recv_timeout(WAIT).expect("attached once the socket appeared");
    hub.request_shutdown(0);
    thread.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
