//! The replication channel (`Hello::Attach`), served on its own thread with
//! a blocking socket because it passes file descriptors.
//!
//! Sequence: `Attached` (+ ring memfd), `Snapshot` (+ snapshot memfd),
//! `Cluster`; afterwards a new `Cluster` whenever leadership or peers change,
//! a new `Snapshot` whenever the state was replaced or the data plane asks
//! (`NeedSnapshot`), and `Shutdown` when the agent wants it gone.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proconsul_shared::agent_info::AgentInfo;
use proconsul_shared::ipc::fdpass::send_with_fds;
use proconsul_shared::ipc::frame::{self, FrameDecoder, FrameError};
use proconsul_shared::ipc::messages::{ClusterStatus, FromDataplane, ToDataplane};
use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::snapshot_region::SnapshotMeta;
use tokio::sync::watch;

use super::hub::{AttachHub, AttachSession};

/// How often the channel looks for work (cluster changes, resets, exit).
pub const ATTACH_POLL_MS: u64 = 100;
/// Longest a frame write may block before the data plane is given up on.
pub const ATTACH_WRITE_TIMEOUT_MS: u64 = 5_000;
/// How long a data plane told to shut down may keep its channel open.
pub const SHUTDOWN_DRAIN_MS: u64 = 5_000;
/// Fewest milliseconds between two snapshots on one channel: a data plane
/// that keeps asking cannot make the agent archive the state in a loop.
pub const SNAPSHOT_INTERVAL_MS_MIN: u64 = 100;

/// What the replication channel needs from the agent.
pub trait ReplicationSource: Send + Sync + 'static {
    /// Identifies this control-plane run.
    fn epoch(&self) -> u64;
    /// A new descriptor of the delta ring memfd.
    fn ring_fd(&self) -> io::Result<OwnedFd>;
    /// A fresh snapshot region and the ring position it pairs with.
    fn snapshot(&self) -> io::Result<(SharedRegion, SnapshotMeta)>;
    /// Bumps whenever the whole state was replaced.
    fn resets(&self) -> watch::Receiver<u64>;
    fn agent(&self) -> AgentInfo;
    fn cluster_status(&self) -> ClusterStatus;
}

/// Spaces snapshots at least `interval` apart, remembering a request that
/// came too early. Pure.
#[derive(Debug)]
pub struct SnapshotPacer {
    interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl SnapshotPacer {
    pub fn new(interval: Duration) -> SnapshotPacer {
        SnapshotPacer {
            interval,
            last_sent: None,
            pending: false,
        }
    }

    /// A snapshot is wanted.
    pub fn request(&mut self) {
        self.pending = true;
    }

    /// Whether to send one now.
    pub fn due(&self, now: Instant) -> bool {
        self.pending && self.last_sent.is_none_or(|t| now.duration_since(t) >= self.interval)
    }

    /// One was sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.pending = false;
        self.last_sent = Some(now);
    }
}

/// How a channel ended.
#[derive(Debug)]
enum End {
    Closed,
    DrainTimeout,
}

#[derive(Debug, thiserror::Error)]
enum AttachError {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

struct Channel<S: ReplicationSource> {
    stream: UnixStream,
    decoder: FrameDecoder,
    source: Arc<S>,
    session: Arc<AttachSession>,
    pacer: SnapshotPacer,
}

impl<S: ReplicationSource> Channel<S> {
    fn send(&mut self, msg: &ToDataplane) -> Result<(), AttachError> {
        self.stream.write_all(&frame::encode(msg)?)?;
        Ok(())
    }

    fn send_with_fd(&mut self, msg: &ToDataplane, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), AttachError> {
        send_with_fds(self.stream.as_fd(), &frame::encode(msg)?, &[fd])?;
        Ok(())
    }

    fn send_snapshot(&mut self) -> Result<(), AttachError> {
        let (region, meta) = self.source.snapshot()?;
        self.send_with_fd(&ToDataplane::Snapshot { index: meta.index }, region.fd())?;
        self.pacer.sent(Instant::now());
        tracing::debug!(target: "agent.rpc", "sent snapshot at index {} to data plane", meta.index);
        Ok(())
    }

    fn run(&mut self) -> Result<End, AttachError> {
        let mut resets = self.source.resets();
        resets.borrow_and_update();
        let ring = self.source.ring_fd()?;
        let attached = ToDataplane::Attached {
            epoch: self.source.epoch(),
            agent: Box::new(self.source.agent()),
        };
        self.send_with_fd(&attached, ring.as_fd())?;
        drop(ring);
        self.send_snapshot()?;
        let mut cluster = self.source.cluster_status();
        self.send(&ToDataplane::Cluster(cluster.clone()))?;

        let mut drain_deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 4096];
        loop {
            let now = Instant::now();
            match drain_deadline {
                Some(deadline) if now >= deadline => return Ok(End::DrainTimeout),
                Some(_) => {}
                None if self.session.exit_requested() => {
                    self.send(&ToDataplane::Shutdown)?;
                    drain_deadline = Some(now + Duration::from_millis(SHUTDOWN_DRAIN_MS));
                }
                None => {
                    if resets.has_changed().unwrap_or(false) {
                        resets.borrow_and_update();
                        self.pacer.request();
                    }
                    if self.pacer.due(now) {
                        self.send_snapshot()?;
                    }
                    let latest = self.source.cluster_status();
                    if latest != cluster {
                        self.send(&ToDataplane::Cluster(latest.clone()))?;
                        cluster = latest;
                    }
                }
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(End::Closed),
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    while let Some(msg) = self.decoder.next_message::<FromDataplane>()? {
                        self.handle(msg);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn handle(&mut self, msg: FromDataplane) {
        match msg {
            FromDataplane::NeedSnapshot { reason } => {
                tracing::info!(target: "agent.rpc", "data plane asked for a snapshot: {reason}");
                self.pacer.request();
            }
            FromDataplane::Applied { index } => {
                tracing::trace!(target: "agent.rpc", "data plane applied index {index}");
            }
        }
    }
}

/// Serves one replication channel to its end. `decoder` holds any bytes
/// read past the hello.
pub fn serve_attach<S: ReplicationSource>(
    stream: UnixStream,
    decoder: FrameDecoder,
    pid: u32,
    launch_fingerprint: String,
    source: Arc<S>,
    hub: Arc<AttachHub>,
) {
    let Some(session) = hub.try_attach(pid, launch_fingerprint) else {
        let other = hub.attached().map(|d| d.pid).unwrap_or(0);
        tracing::warn!(
            target: "agent.rpc",
            "data plane pid {pid} tried to attach while pid {other} is attached; asking it to exit"
        );
        let mut stream = stream;
        let _ = stream.set_write_timeout(Some(Duration::from_millis(ATTACH_WRITE_TIMEOUT_MS)));
        if let Ok(bytes) = frame::encode(&ToDataplane::Shutdown) {
            let _ = stream.write_all(&bytes);
        }
        return;
    };
    tracing::info!(target: "agent.rpc", "data plane pid {pid} attached");
    let configured = stream
        .set_read_timeout(Some(Duration::from_millis(ATTACH_POLL_MS)))
        .and_then(|_| stream.set_write_timeout(Some(Duration::from_millis(ATTACH_WRITE_TIMEOUT_MS))));
    let outcome = match configured {
        Err(e) => Err(AttachError::Io(e)),
        Ok(()) => Channel {
            stream,
            decoder,
            source,
            session: session.clone(),
            pacer: SnapshotPacer::new(Duration::from_millis(SNAPSHOT_INTERVAL_MS_MIN)),
        }
        .run(),
    };
    hub.detach(&session);
    match outcome {
        Ok(End::Closed) => tracing::info!(target: "agent.rpc", "data plane pid {pid} detached"),
        Ok(End::DrainTimeout) => tracing::warn!(
            target: "agent.rpc",
            "data plane pid {pid} kept its channel open {SHUTDOWN_DRAIN_MS} ms after Shutdown; closing it"
        ),
        Err(e) => tracing::warn!(target: "agent.rpc", "replication channel of data plane pid {pid} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::ipc::fdpass::recv_with_fds;
    use proconsul_shared::shm::ring::RingWriter;
    use proconsul_shared::shm::snapshot_region;
    use proconsul_shared::State;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    struct FakeSource {
        ring: RingWriter,
        resets: watch::Sender<u64>,
        cluster: Mutex<ClusterStatus>,
        snapshots: AtomicU64,
    }

    impl ReplicationSource for FakeSource {
        fn epoch(&self) -> u64 {
            77
        }
        fn ring_fd(&self) -> io::Result<OwnedFd> {
            self.ring.region().fd().try_clone_to_owned()
        }
        fn snapshot(&self) -> io::Result<(SharedRegion, SnapshotMeta)> {
            let n = self.snapshots.fetch_add(1, Ordering::SeqCst);
            let mut state = State::default();
            state.apply_noop(n + 1);
            snapshot_region::write(&state, 0)
        }
        fn resets(&self) -> watch::Receiver<u64> {
            self.resets.subscribe()
        }
        fn agent(&self) -> AgentInfo {
            serde_json::from_value(serde_json::json!({
                "node_name": "n1", "node_id": "id", "datacenter": "dc1", "primary_datacenter": "dc1",
                "server": true, "bootstrap": true, "bootstrap_expect": 0, "dev_mode": true,
                "bind_addr": "127.0.0.1", "advertise_addr": "127.0.0.1", "client_addrs": ["127.0.0.1"],
                "ports": {"http": 8500, "https": -1, "dns": 8600, "grpc": -1, "grpc_tls": -1,
                          "server": 8300, "serf_lan": 8301, "serf_wan": 8302},
                "domain": "consul.", "revision": "r", "build_date": "d", "log_level": "info",
                "pretty_json": false, "enable_script_checks": false, "data_dir": "",
                "node_meta": {}, "default_query_time_ms": 1, "max_query_time_ms": 2
            }))
            .unwrap()
        }
        fn cluster_status(&self) -> ClusterStatus {
            self.cluster.lock().unwrap().clone()
        }
    }

    /// The data-plane end of the channel.
    struct Peer {
        sock: UnixStream,
        decoder: FrameDecoder,
        fds: VecDeque<OwnedFd>,
    }

    impl Peer {
        fn next(&mut self) -> (ToDataplane, Option<OwnedFd>) {
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut buf = [0u8; 4096];
            loop {
                if let Some(msg) = self.decoder.next_message::<ToDataplane>().unwrap() {
                    let fd = match msg {
                        ToDataplane::Attached { .. } | ToDataplane::Snapshot { .. } => self.fds.pop_front(),
                        _ => None,
                    };
                    return (msg, fd);
                }
                assert!(Instant::now() < deadline, "no message in time");
                let n = recv_with_fds(self.sock.as_fd(), &mut buf, &mut self.fds).unwrap();
                assert!(n > 0, "channel closed");
                self.decoder.push(&buf[..n]);
            }
        }

        fn send(&mut self, msg: &FromDataplane) {
            self.sock.write_all(&frame::encode(msg).unwrap()).unwrap();
        }
    }

    fn start() -> (Peer, Arc<FakeSource>, Arc<AttachHub>, std::thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let source = Arc::new(FakeSource {
            ring: RingWriter::create(proconsul_shared::limits::DELTA_RING_BYTES_MIN, 77).unwrap(),
            resets: watch::Sender::new(0),
            cluster: Mutex::new(ClusterStatus {
                leader: Some("127.0.0.1:8300".into()),
                peers: vec!["127.0.0.1:8300".into()],
            }),
            snapshots: AtomicU64::new(0),
        });
        let hub = AttachHub::new();
        let (s, h) = (source.clone(), hub.clone());
        let thread = std::thread::spawn(move || serve_attach(ours, FrameDecoder::default(), 4242, "fp".into(), s, h));
        theirs.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let peer = Peer {
            sock: theirs,
            decoder: FrameDecoder::default(),
            fds: VecDeque::new(),
        };
        (peer, source, hub, thread)
    }

    #[test]
    fn full_channel_lifecycle() {
        let (mut peer, source, hub, thread) = start();
        let (msg, fd) = peer.next();
        assert!(matches!(msg, ToDataplane::Attached { epoch: 77, ref agent } if agent.node_name == "n1"));
        let ring = SharedRegion::from_fd(fd.expect("ring fd attached")).unwrap();
        assert_eq!(ring.len(), source.ring.region().len());

        let (msg, fd) = peer.next();
        assert_eq!(msg, ToDataplane::Snapshot { index: 1 });
        let (_, meta) = snapshot_region::read(&SharedRegion::from_fd(fd.unwrap()).unwrap()).unwrap();
        assert_eq!(meta.index, 1);

        let (msg, _) = peer.next();
        assert!(matches!(msg, ToDataplane::Cluster(ref c) if c.leader.as_deref() == Some("127.0.0.1:8300")));
        assert_eq!(
            hub.attached().map(|d| (d.pid, d.launch_fingerprint)),
            Some((4242, "fp".to_string()))
        );

        // Leadership change → a new Cluster message.
        source.cluster.lock().unwrap().leader = None;
        let (msg, _) = peer.next();
        assert_eq!(
            msg,
            ToDataplane::Cluster(ClusterStatus {
                leader: None,
                peers: vec!["127.0.0.1:8300".into()]
            })
        );

        // The data plane asks → a new snapshot.
        peer.send(&FromDataplane::Applied { index: 1 });
        peer.send(&FromDataplane::NeedSnapshot {
            reason: "lapped".into(),
        });
        let (msg, fd) = peer.next();
        assert_eq!(msg, ToDataplane::Snapshot { index: 2 });
        assert!(fd.is_some());

        // The state was replaced → a new snapshot.
        source.resets.send_replace(1);
        let (msg, _) = peer.next();
        assert_eq!(msg, ToDataplane::Snapshot { index: 3 });

        // The agent wants it gone → Shutdown; it closes → detached.
        assert_eq!(hub.request_exit(), Some(4242));
        let (msg, _) = peer.next();
        assert_eq!(msg, ToDataplane::Shutdown);
        drop(peer);
        thread.join().unwrap();
        assert_eq!(hub.attached(), None);
    }

    #[test]
    fn a_second_data_plane_is_told_to_exit() {
        let (_first, source, hub, _thread) = start();
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.attached().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (ours, theirs) = UnixStream::pair().unwrap();
        serve_attach(ours, FrameDecoder::default(), 5555, "fp".into(), source, hub.clone());
        let mut peer = Peer {
            sock: theirs,
            decoder: FrameDecoder::default(),
            fds: VecDeque::new(),
        };
        peer.sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(peer.next().0, ToDataplane::Shutdown);
        assert_eq!(
            hub.attached().map(|d| d.pid),
            Some(4242),
            "the first one stays attached"
        );
    }

    #[test]
    fn pacer_spaces_snapshots() {
        let t0 = Instant::now();
        let mut p = SnapshotPacer::new(Duration::from_millis(100));
        assert!(!p.due(t0), "nothing requested");
        p.request();
        assert!(p.due(t0));
        p.sent(t0);
        p.request();
        assert!(!p.due(t0 + Duration::from_millis(50)), "too soon after the last one");
        assert!(p.due(t0 + Duration::from_millis(100)));
        p.sent(t0 + Duration::from_millis(100));
        assert!(!p.due(t0 + Duration::from_secs(10)), "the request was served");
    }
}
