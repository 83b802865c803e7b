//! A miniature control plane for in-process tests: answers the attach
//! channel (ring + snapshot + heartbeats) and request channels (applies
//! writes to its own state and publishes their deltas on the ring).

use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proconsul_shared::ipc::fdpass;
use proconsul_shared::ipc::frame;
use proconsul_shared::ipc::messages::{
    ControlOp, ControlReply, ControlRequest, ControlResponse, FromDataplane, Hello, ToDataplane,
};
use proconsul_shared::limits::DELTA_RING_BYTES_MIN;
use proconsul_shared::shm::ring::{Heartbeat, RingWriter};
use proconsul_shared::shm::snapshot_region;
use proconsul_shared::State;

use crate::replica::fixtures::test_agent;

const TICK: Duration = Duration::from_millis(50);

struct Shared {
    state: Mutex<State>,
    ring: Mutex<Option<RingWriter>>,
    stop: AtomicBool,
}

/// The fake control plane; stops and cleans up when dropped.
pub struct MiniControlPlane {
    pub dir: PathBuf,
    pub socket_path: PathBuf,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

impl MiniControlPlane {
    /// Starts serving `state` on a fresh socket in a temp directory.
    pub fn start(state: State) -> MiniControlPlane {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("pc-mini-cp-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket_path = dir.join("control.sock");
        let listener = UnixListener::bind(&socket_path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            ring: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(listener, s));
        MiniControlPlane {
            dir,
            socket_path,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The control plane's current index.
    pub fn index(&self) -> u64 {
        self.shared.state.lock().unwrap().index()
    }
}

impl Drop for MiniControlPlane {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    let mut handlers = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((sock, _)) => {
                let s = shared.clone();
                handlers.push(std::thread::spawn(move || handle(sock, s)));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("accept: {e}"),
        }
    }
    for h in handlers {
        let _ = h.join();
    }
}

fn handle(mut sock: UnixStream, shared: Arc<Shared>) {
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(TICK)).unwrap();
    let hello: Hello = loop {
        match frame::read_blocking(&mut sock) {
            Ok(h) => break h,
            Err(_) if !shared.stop.load(Ordering::SeqCst) => continue,
            Err(_) => return,
        }
    };
    match hello {
        Hello::Attach { .. } => attach(sock, &shared),
        Hello::Requests { .. } => requests(sock, &shared),
    }
}

fn beat(ring: &RingWriter) {
    ring.heartbeat(Heartbeat {
        unix_ms: unix_ms(),
        leader_known: true,
        last_contact_ms: 0,
    });
}

fn attach(mut sock: UnixStream, shared: &Shared) {
    {
        let ring = RingWriter::create(DELTA_RING_BYTES_MIN, 1).unwrap();
        beat(&ring);
        let attached = frame::encode(&ToDataplane::Attached {
            epoch: 1,
            agent: Box::new(test_agent()),
        })
        .unwrap();
        fdpass::send_with_fds(sock.as_fd(), &attached, &[ring.region().fd()]).unwrap();
        let state = shared.state.lock().unwrap();
        let (region, meta) = snapshot_region::write(&state, ring.head()).unwrap();
        let snap = frame::encode(&ToDataplane::Snapshot { index: meta.index }).unwrap();
        fdpass::send_with_fds(sock.as_fd(), &snap, &[region.fd()]).unwrap();
        *shared.ring.lock().unwrap() = Some(ring);
    }
    while !shared.stop.load(Ordering::SeqCst) {
        match frame::read_blocking::<FromDataplane>(&mut sock) {
            Ok(_) => {}
            Err(frame::FrameError::Closed) => return,
            Err(_) => {}
        }
        if let Some(ring) = shared.ring.lock().unwrap().as_ref() {
            beat(ring);
        }
    }
    let _ = sock.write_all(&frame::encode(&ToDataplane::Shutdown).unwrap());
}

fn requests(mut sock: UnixStream, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let req: ControlRequest = match frame::read_blocking(&mut sock) {
            Ok(r) => r,
            Err(frame::FrameError::Closed) => return,
            Err(_) => continue,
        };
        let result = match req.op {
            ControlOp::Write(command) => {
                let mut state = shared.state.lock().unwrap();
                let index = state.index() + 1;
                let (result, delta) = state.apply_command(index, &command);
                if let Some(ring) = shared.ring.lock().unwrap().as_mut() {
                    ring.append(index, &delta.encode()).unwrap();
                }
                Ok(ControlReply::Written { index, result })
            }
            ControlOp::Stats => Ok(ControlReply::Stats(Default::default())),
            ControlOp::Leave => Ok(ControlReply::Done),
            ControlOp::ReadBarrier => Ok(ControlReply::ReadIndex(shared.state.lock().unwrap().index())),
            ControlOp::Http(call) => Err(proconsul_shared::ipc::messages::ControlError {
                status: 404,
                message: format!("the test control plane does not serve {}", call.path),
            }),
        };
        let response = frame::encode(&ControlResponse { id: req.id, result }).unwrap();
        if sock.write_all(&response).is_err() {
            return;
        }
    }
}
