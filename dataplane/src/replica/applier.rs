//! The applier thread: owns the attach connection to the control plane,
//! maps the snapshot and the delta ring, applies deltas to the replica and
//! publishes versions to the cores.
//!
//! Blocking std IO on one thread. The socket is non-blocking and polled
//! between ring waits (a futex wait of at most [`IDLE_WAIT`]), so cluster
//! updates, shutdowns and new snapshots are seen within that time while
//! deltas are applied as soon as they are published.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proconsul_shared::ipc::fdpass;
use proconsul_shared::ipc::frame::{self, FrameDecoder};
use proconsul_shared::ipc::messages::{FromDataplane, Hello, ToDataplane};
use proconsul_shared::shm::region::SharedRegion;
use proconsul_shared::shm::ring::{ReadOutcome, RingReader};
use proconsul_shared::shm::snapshot_region;
use proconsul_shared::Delta;

use crate::replica::apply::{Replica, SnapshotInstall};
use crate::replica::handoff::Hub;
use crate::replica::leadership::{assess, worth_publishing, Link};
use crate::replica::version::LeaderInfo;

/// Pause between attach attempts.
pub const ATTACH_RETRY: Duration = Duration::from_millis(100);
/// Longest idle wait on the ring or the socket.
pub const IDLE_WAIT: Duration = Duration::from_millis(20);
/// Most ring records applied into one version (bounds publication latency
/// during a long catch-up).
pub const RECORDS_PER_VERSION_MAX: usize = 10_000;
/// While waiting for a requested snapshot, ask again this often.
pub const SNAPSHOT_REQUEST_RETRY: Duration = Duration::from_secs(2);
/// How often the applied index is reported to the control plane at most.
pub const APPLIED_REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Descriptors received but not yet claimed by a message, at most.
const PENDING_FDS_MAX: usize = 8;
/// Socket reads per loop turn, at most (bounded so the ring is not starved).
const READS_PER_TURN_MAX: usize = 64;
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How to reach the control plane.
#[derive(Debug, Clone)]
pub struct ApplierConfig {
    /// `<run_dir>/control.sock`.
    pub socket_path: PathBuf,
    /// Identifies the listen configuration (`DataplaneLaunch::fingerprint`).
    pub launch_fingerprint: String,
    /// Exit (code 0) when an attached control plane goes away.
    pub exit_with_control_plane: bool,
}

/// Starts the applier thread. `first_version` receives one message when
/// the first version is published.
pub fn spawn(config: ApplierConfig, hub: Arc<Hub>, first_version: SyncSender<()>) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("proconsul-replica".into())
        .spawn(move || {
            let mut applier = Applier {
                config,
                hub,
                replica: Replica::new(),
                first_version: Some(first_version),
                last_applied_report: None,
                reported_index: 0,
            };
            applier.replica.set_leader(LeaderInfo::lost(Instant::now()));
            applier.run();
        })
}

/// Why a session with one control plane ended.
#[derive(Debug)]
enum SessionEnd {
    /// Stop everything.
    Shutdown,
    /// The control plane went away or misbehaved: retry attaching.
    Lost(String),
}

struct Applier {
    config: ApplierConfig,
    hub: Arc<Hub>,
    replica: Replica,
    first_version: Option<SyncSender<()>>,
    last_applied_report: Option<Instant>,
    reported_index: u64,
}

/// Per-connection state.
struct Session {
    decoder: FrameDecoder,
    fds: VecDeque<OwnedFd>,
    ring: Option<RingReader>,
    /// Until a snapshot pairs the ring with a state, the ring is not read.
    awaiting_snapshot: bool,
    snapshot_requested_at: Option<Instant>,
    attached_unix_ms: u64,
    since: Instant,
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Applier {
    fn run(&mut self) {
        while !self.hub.is_shutdown() {
            if let Ok(sock) = UnixStream::connect(&self.config.socket_path) {
                let end = catch_unwind(AssertUnwindSafe(|| self.session(sock)));
                let lost_at = Instant::now();
                match end {
                    Ok(SessionEnd::Shutdown) => return,
                    Ok(SessionEnd::Lost(reason)) => {
                        tracing::warn!(%reason, "lost the control plane; serving the last state")
                    }
                    Err(_) => tracing::error!("replica session panicked; re-attaching"),
                }
                self.replica.set_leader(LeaderInfo::lost(lost_at));
                self.publish();
                if self.config.exit_with_control_plane && self.replica.has_state() {
                    tracing::info!("control plane gone; exiting with it");
                    self.hub.request_shutdown(0);
                    return;
                }
            }
            sleep_unless_shutdown(&self.hub, ATTACH_RETRY);
        }
    }

    fn session(&mut self, mut sock: UnixStream) -> SessionEnd {
        let hello = Hello::Attach {
            pid: std::process::id(),
            launch_fingerprint: self.config.launch_fingerprint.clone(),
        };
        if let Err(e) = frame::write_blocking(&mut sock, &hello) {
            return SessionEnd::Lost(format!("sending hello: {e}"));
        }
        if let Err(e) = sock.set_nonblocking(true) {
            return SessionEnd::Lost(format!("socket setup: {e}"));
        }
        let mut s = Session {
            decoder: FrameDecoder::default(),
            fds: VecDeque::new(),
            ring: None,
            awaiting_snapshot: true,
            snapshot_requested_at: None,
            attached_unix_ms: unix_now_ms(),
            since: Instant::now(),
        };
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        loop {
            if self.hub.is_shutdown() {
                return SessionEnd::Shutdown;
            }
            // Messages that arrived before a hang-up (a final `Shutdown`)
            // are handled before the hang-up itself.
            let read = self.read_socket(&sock, &mut s, &mut buf);
            if let Err(end) = self.handle_messages(&mut s) {
                return end;
            }
            if let Err(end) = read {
                return end;
            }
            let more = self.drain_ring(&sock, &mut s);
            self.update_leadership(&s);
            self.publish();
            self.report_applied(&sock);
            if s.awaiting_snapshot && s.ring.is_some() {
                self.rerequest_snapshot(&sock, &mut s);
            }
            if more {
                continue;
            }
            match &s.ring {
                Some(ring) if !s.awaiting_snapshot => ring.wait(IDLE_WAIT),
                _ => wait_readable(&sock, IDLE_WAIT),
            }
        }
    }

    fn read_socket(&self, sock: &UnixStream, s: &mut Session, buf: &mut [u8]) -> Result<(), SessionEnd> {
        for _ in 0..READS_PER_TURN_MAX {
            match fdpass::recv_with_fds(sock.as_fd(), buf, &mut s.fds) {
                Ok(0) => return Err(SessionEnd::Lost("control plane closed the connection".into())),
                Ok(n) => s.decoder.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(SessionEnd::Lost(format!("reading the control socket: {e}"))),
            }
        }
        if s.fds.len() > PENDING_FDS_MAX {
            return Err(SessionEnd::Lost("control plane sent unclaimed descriptors".into()));
        }
        Ok(())
    }

    fn handle_messages(&mut self, s: &mut Session) -> Result<(), SessionEnd> {
        loop {
            let msg = match s.decoder.next_message::<ToDataplane>() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => return Err(SessionEnd::Lost(format!("bad frame from the control plane: {e}"))),
            };
            match msg {
                ToDataplane::Attached { epoch, agent } => {
                    let fd = s
                        .fds
                        .pop_front()
                        .ok_or_else(|| SessionEnd::Lost("Attached without a ring descriptor".into()))?;
                    let region = SharedRegion::from_fd(fd).map_err(|e| SessionEnd::Lost(format!("ring map: {e}")))?;
                    let ring = RingReader::open(region, 0).map_err(|e| SessionEnd::Lost(format!("ring: {e}")))?;
                    if ring.epoch() != epoch {
                        return Err(SessionEnd::Lost(format!(
                            "ring epoch {} differs from announced {epoch}",
                            ring.epoch()
                        )));
                    }
                    tracing::info!(epoch, "attached to the control plane");
                    s.ring = Some(ring);
                    s.awaiting_snapshot = true;
                    s.snapshot_requested_at = Some(Instant::now());
                    s.attached_unix_ms = unix_now_ms();
                    self.replica.set_agent(*agent);
                }
                ToDataplane::Snapshot { index } => {
                    let fd = s
                        .fds
                        .pop_front()
                        .ok_or_else(|| SessionEnd::Lost("Snapshot without a descriptor".into()))?;
                    let Some(ring) = s.ring.as_mut() else {
                        return Err(SessionEnd::Lost("Snapshot before Attached".into()));
                    };
                    let loaded = SharedRegion::from_fd(fd)
                        .map_err(|e| e.to_string())
                        .and_then(|region| snapshot_region::read(&region).map_err(|e| e.to_string()));
                    let loaded = loaded.and_then(|(state, meta)| {
                        if meta.ring_pos.is_multiple_of(16) {
                            Ok((state, meta))
                        } else {
                            Err(format!("ring position {} is not record aligned", meta.ring_pos))
                        }
                    });
                    match loaded {
                        Ok((state, meta)) => {
                            if meta.index != index {
                                tracing::warn!(announced = index, mapped = meta.index, "snapshot index mismatch");
                            }
                            ring.seek(meta.ring_pos);
                            let outcome = self.replica.install_snapshot(state);
                            s.awaiting_snapshot = false;
                            s.snapshot_requested_at = None;
                            match outcome {
                                SnapshotInstall::Restore => {
                                    tracing::warn!(index = meta.index, "state restored to a lower index")
                                }
                                _ => tracing::debug!(index = meta.index, "snapshot installed"),
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "snapshot rejected; asking for another");
                            s.awaiting_snapshot = true;
                            s.snapshot_requested_at = None;
                        }
                    }
                }
                ToDataplane::Cluster(status) => self.replica.set_cluster(status),
                ToDataplane::Shutdown => {
                    tracing::info!("control plane asked the data plane to shut down");
                    self.hub.request_shutdown(0);
                    return Err(SessionEnd::Shutdown);
                }
            }
        }
    }

    /// Applies ring records into the replica. Returns whether more records
    /// may be waiting (the per-version cap was hit).
    fn drain_ring(&mut self, sock: &UnixStream, s: &mut Session) -> bool {
        if s.awaiting_snapshot {
            return false;
        }
        let Some(ring) = s.ring.as_mut() else {
            return false;
        };
        for _ in 0..RECORDS_PER_VERSION_MAX {
            match ring.read_next() {
                ReadOutcome::Empty => return false,
                ReadOutcome::Record { index } => match Delta::decode(ring.payload()) {
                    Ok(delta) if delta.index == index => {
                        self.replica.apply(&delta);
                    }
                    Ok(delta) => {
                        let reason = format!("ring record {index} carries delta {}", delta.index);
                        request_snapshot(sock, s, reason);
                        return false;
                    }
                    Err(e) => {
                        request_snapshot(sock, s, format!("undecodable delta at {index}: {e}"));
                        return false;
                    }
                },
                ReadOutcome::Overrun => {
                    request_snapshot(sock, s, "the delta ring lapped this reader".into());
                    return false;
                }
            }
        }
        true
    }

    fn rerequest_snapshot(&self, sock: &UnixStream, s: &mut Session) {
        let due = s
            .snapshot_requested_at
            .is_none_or(|at| at.elapsed() >= SNAPSHOT_REQUEST_RETRY);
        if due {
            request_snapshot(sock, s, "still waiting for a snapshot".into());
        }
    }

    fn update_leadership(&mut self, s: &Session) {
        let link = match &s.ring {
            Some(ring) => Link::Attached {
                heartbeat: ring.heartbeat(),
                attached_unix_ms: s.attached_unix_ms,
            },
            None => Link::Detached { since: s.since },
        };
        let next = assess(link, Instant::now(), unix_now_ms());
        let publish = match self.replica.leader() {
            Some(prev) => worth_publishing(&prev, &next),
            None => true,
        };
        if publish {
            self.replica.set_leader(next);
        }
    }

    fn publish(&mut self) {
        if let Some(version) = self.replica.take_version() {
            tracing::trace!(seq = version.seq, index = version.state.index(), "publishing a version");
            self.hub.publish(version);
            if let Some(first) = self.first_version.take() {
                let _ = first.try_send(());
            }
        }
    }

    fn report_applied(&mut self, mut sock: &UnixStream) {
        let index = self.replica.index();
        if index == self.reported_index {
            return;
        }
        if self
            .last_applied_report
            .is_some_and(|at| at.elapsed() < APPLIED_REPORT_INTERVAL)
        {
            return;
        }
        self.last_applied_report = Some(Instant::now());
        self.reported_index = index;
        if let Err(e) = frame::write_blocking(&mut sock, &FromDataplane::Applied { index }) {
            tracing::debug!(error = %e, "could not report the applied index");
        }
    }
}

fn request_snapshot(mut sock: &UnixStream, s: &mut Session, reason: String) {
    tracing::warn!(%reason, "asking the control plane for a snapshot");
    s.awaiting_snapshot = true;
    s.snapshot_requested_at = Some(Instant::now());
    if let Err(e) = frame::write_blocking(&mut sock, &FromDataplane::NeedSnapshot { reason }) {
        tracing::warn!(error = %e, "could not ask for a snapshot");
    }
}

/// Waits until `sock` is readable or `timeout` passes.
fn wait_readable(sock: &UnixStream, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int);
    }
}

fn sleep_unless_shutdown(hub: &Hub, total: Duration) {
    let step = Duration::from_millis(10);
    let started = Instant::now();
    while started.elapsed() < total && !hub.is_shutdown() {
        std::thread::sleep(step);
    }
}

#[cfg(test)]
mod tests;
