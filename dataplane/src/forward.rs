//! Per-core request channel to the control plane.
//!
//! Each core lazily opens one unix-socket connection to
//! `<run_dir>/control.sock` (`Hello::Requests{core}`), multiplexes
//! `ControlRequest{id, op}` / `ControlResponse{id, result}` over it (a
//! reader task completes per-request slots; a writer task flushes queued
//! frames), and reconnects after a failure. Bounded: requests in flight
//! per core ([`IN_FLIGHT_PER_CORE_MAX`], then 429), time to connect, time
//! to answer ([`RESPONSE_TIMEOUT`], then 500). An unreachable control
//! plane answers "No cluster leader" at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt, Splitable};
use monoio::net::UnixStream;
use proconsul_shared::ipc::frame::{self, FrameDecoder};
use proconsul_shared::ipc::messages::{ControlError, ControlOp, ControlReply, ControlRequest, ControlResponse, Hello};

/// Requests one core may have waiting for the control plane.
pub const IN_FLIGHT_PER_CORE_MAX: usize = 4096;
/// Longest wait for one response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the connection itself.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed connect, requests fail at once for this long instead of
/// each retrying.
pub const CONNECT_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Read buffer of the response reader.
const READ_BUFFER_BYTES: usize = 64 * 1024;

type ControlResult = Result<ControlReply, ControlError>;

fn too_many_requests() -> ControlError {
    ControlError {
        status: 429,
        message: "Too many requests waiting for the control plane, please retry".into(),
    }
}

fn response_timeout() -> ControlError {
    ControlError {
        status: 500,
        message: "Timed out waiting for the control plane".into(),
    }
}

#[derive(Default)]
struct Slot {
    result: Option<ControlResult>,
    waker: Option<Waker>,
}

/// Requests waiting for their response, by id (pure bookkeeping).
pub struct PendingRequests {
    slots: HashMap<u64, Slot>,
    next_id: u64,
    capacity: usize,
}

impl PendingRequests {
    /// Room for `capacity` requests in flight.
    pub fn new(capacity: usize) -> PendingRequests {
        PendingRequests {
            slots: HashMap::new(),
            next_id: 1,
            capacity,
        }
    }

    /// Requests in flight.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reserves an id, or answers 429 at the limit.
    pub fn begin(&mut self) -> Result<u64, ControlError> {
        if self.slots.len() >= self.capacity {
            return Err(too_many_requests());
        }
        let id = self.next_id;
        self.next_id += 1;
        self.slots.insert(id, Slot::default());
        Ok(id)
    }

    /// Delivers a response. Returns whether someone was waiting for it
    /// (a response to a cancelled or timed-out request is dropped).
    pub fn complete(&mut self, id: u64, result: ControlResult) -> bool {
        let Some(slot) = self.slots.get_mut(&id) else {
            return false;
        };
        if slot.result.is_some() {
            return false;
        }
        slot.result = Some(result);
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
        true
    }

    /// Fails every request still waiting.
    pub fn fail_all(&mut self, error: &ControlError) {
        let ids: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.result.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.complete(id, Err(error.clone()));
        }
    }

    /// Takes the response of `id` if it arrived, else remembers the waker.
    pub fn poll(&mut self, id: u64, cx: &mut Context<'_>) -> Poll<ControlResult> {
        let Some(slot) = self.slots.get_mut(&id) else {
            return Poll::Ready(Err(ControlError::no_leader()));
        };
        match slot.result.take() {
            Some(r) => {
                self.slots.remove(&id);
                Poll::Ready(r)
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Forgets a request (its caller went away).
    pub fn cancel(&mut self, id: u64) {
        self.slots.remove(&id);
    }
}

/// One live connection: frames to write and its state.
struct Connection {
    outbox: RefCell<Vec<u8>>,
    writer_waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Connection {
    fn send(&self, frame: &[u8]) {
        self.outbox.borrow_mut().extend_from_slice(frame);
        if let Some(w) = self.writer_waker.borrow_mut().take() {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.writer_waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Shared {
    core_id: u32,
    socket_path: PathBuf,
    connection: RefCell<Option<Rc<Connection>>>,
    pending: RefCell<PendingRequests>,
    last_connect_failure: Cell<Option<Instant>>,
    connecting: Cell<bool>,
    /// Requests waiting for the connect under way (at most the in-flight
    /// limit).
    connect_waiters: RefCell<Vec<Waker>>,
}

impl Shared {
    fn live_connection(&self) -> Option<Rc<Connection>> {
        self.connection.borrow().as_ref().filter(|c| !c.closed.get()).cloned()
    }

    fn connection_lost(&self, conn: &Rc<Connection>) {
        conn.close();
        let mut current = self.connection.borrow_mut();
        if current.as_ref().is_some_and(|c| Rc::ptr_eq(c, conn)) {
            *current = None;
        }
        drop(current);
        self.pending.borrow_mut().fail_all(&ControlError::no_leader());
    }
}

/// The request channel of one core.
pub struct Forwarder {
    shared: Rc<Shared>,
}

impl Forwarder {
    /// A forwarder for core `core_id`; nothing connects until the first
    /// request.
    pub fn new(core_id: u32, socket_path: PathBuf) -> Forwarder {
        Forwarder::with_capacity(core_id, socket_path, IN_FLIGHT_PER_CORE_MAX)
    }

    /// As [`Forwarder::new`] with a custom in-flight limit.
    pub fn with_capacity(core_id: u32, socket_path: PathBuf, in_flight_max: usize) -> Forwarder {
        Forwarder {
            shared: Rc::new(Shared {
                core_id,
                socket_path,
                connection: RefCell::new(None),
                pending: RefCell::new(PendingRequests::new(in_flight_max)),
                last_connect_failure: Cell::new(None),
                connecting: Cell::new(false),
                connect_waiters: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.pending.borrow().len()
    }

    /// Sends `op` and waits for its response.
    pub async fn request(&self, op: ControlOp) -> ControlResult {
        let id = self.shared.pending.borrow_mut().begin()?;
        let _cancel = CancelOnDrop {
            shared: &self.shared,
            id,
        };
        let conn = self.connect().await?;
        let frame = frame::encode(&ControlRequest { id, op }).map_err(|e| ControlError {
            status: 413,
            message: format!("Request too large: {e}"),
        })?;
        conn.send(&frame);
        let response = Response {
            shared: &self.shared,
            id,
        };
        match monoio::time::timeout(RESPONSE_TIMEOUT, response).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(core = self.shared.core_id, id, "control plane did not answer in time");
                Err(response_timeout())
            }
        }
    }

    async fn connect(&self) -> Result<Rc<Connection>, ControlError> {
        loop {
            if let Some(conn) = self.shared.live_connection() {
                return Ok(conn);
            }
            if self.shared.connecting.get() {
                // One connect at a time: wait for the one under way.
                ConnectDone(&self.shared).await;
                continue;
            }
            if let Some(failed_at) = self.shared.last_connect_failure.get() {
                if failed_at.elapsed() < CONNECT_RETRY_PAUSE {
                    return Err(ControlError::no_leader());
                }
            }
            let _gate = ConnectingGate::enter(&self.shared);
            return self.open().await;
        }
    }

    async fn open(&self) -> Result<Rc<Connection>, ControlError> {
        let connect = UnixStream::connect(&self.shared.socket_path);
        let stream = match monoio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(core = self.shared.core_id, error = %e, "cannot reach the control plane");
                self.shared.last_connect_failure.set(Some(Instant::now()));
                return Err(ControlError::no_leader());
            }
            Err(_) => {
                tracing::warn!(core = self.shared.core_id, "connecting to the control plane timed out");
                self.shared.last_connect_failure.set(Some(Instant::now()));
                return Err(ControlError::no_leader());
            }
        };
        let hello = frame::encode(&Hello::Requests {
            core: self.shared.core_id,
        })
        .expect("a hello frame is small");
        let conn = Rc::new(Connection {
            outbox: RefCell::new(hello),
            writer_waker: RefCell::new(None),
            closed: Cell::new(false),
        });
        let (reader, writer) = stream.into_split();
        monoio::spawn(read_responses(self.shared.clone(), conn.clone(), reader));
        monoio::spawn(write_requests(conn.clone(), writer));
        *self.shared.connection.borrow_mut() = Some(conn.clone());
        self.shared.last_connect_failure.set(None);
        tracing::debug!(core = self.shared.core_id, "request channel to the control plane open");
        Ok(conn)
    }
}

/// Marks a connect under way; wakes the requests waiting for it when the
/// connect ends (or its future is dropped).
struct ConnectingGate<'a> {
    shared: &'a Shared,
}

impl<'a> ConnectingGate<'a> {
    fn enter(shared: &'a Shared) -> ConnectingGate<'a> {
        debug_assert!(!shared.connecting.get(), "one connect at a time");
        shared.connecting.set(true);
        ConnectingGate { shared }
    }
}

impl Drop for ConnectingGate<'_> {
    fn drop(&mut self) {
        self.shared.connecting.set(false);
        for w in self.shared.connect_waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

struct ConnectDone<'a>(&'a Shared);

impl Future for ConnectDone<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.0.connecting.get() {
            return Poll::Ready(());
        }
        self.0.connect_waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

struct CancelOnDrop<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.pending.borrow_mut().cancel(self.id);
    }
}

struct Response<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Future for Response<'_> {
    type Output = ControlResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ControlResult> {
        self.shared.pending.borrow_mut().poll(self.id, cx)
    }
}

async fn read_responses(shared: Rc<Shared>, conn: Rc<Connection>, mut reader: impl AsyncReadRent) {
    let mut decoder = FrameDecoder::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUFFER_BYTES);
    'read: while !conn.closed.get() {
        buf.clear();
        let (read, b) = reader.read(buf).await;
        buf = b;
        match read {
            Ok(0) => break,
            Ok(n) => decoder.push(&buf[..n]),
            Err(e) => {
                tracing::debug!(error = %e, "request channel read failed");
                break;
            }
        }
        loop {
            match decoder.next_message::<ControlResponse>() {
                Ok(Some(response)) => {
                    shared.pending.borrow_mut().complete(response.id, response.result);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "bad frame from the control plane; reconnecting");
                    break 'read;
                }
            }
        }
    }
    tracing::debug!(core = shared.core_id, "request channel to the control plane closed");
    shared.connection_lost(&conn);
}

struct OutboxReady<'a>(&'a Connection);

impl Future for OutboxReady<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.closed.get() || !self.0.outbox.borrow().is_empty() {
            return Poll::Ready(());
        }
        *self.0.writer_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

async fn write_requests(conn: Rc<Connection>, mut writer: impl AsyncWriteRentExt) {
    let mut batch: Vec<u8> = Vec::new();
    loop {
        OutboxReady(&conn).await;
        if conn.closed.get() {
            return;
        }
        batch.clear();
        std::mem::swap(&mut batch, &mut *conn.outbox.borrow_mut());
        let (written, b) = writer.write_all(batch).await;
        batch = b;
        if let Err(e) = written {
            tracing::debug!(error = %e, "request channel write failed");
            conn.close();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::CommandResult;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn written(index: u64) -> ControlResult {
        Ok(ControlReply::Written {
            index,
            result: CommandResult::Bool(true),
        })
    }

    #[test]
    fn pending_matches_responses_by_id() {
        let mut p = PendingRequests::new(10);
        let a = p.begin().unwrap();
        let b = p.begin().unwrap();
        assert_ne!(a, b);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(p.poll(a, &mut cx).is_pending());
        assert!(p.complete(b, written(7)));
        assert!(p.complete(a, written(5)));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the waiting request woke");
        assert_eq!(p.poll(a, &mut cx), Poll::Ready(written(5)));
        assert_eq!(p.poll(b, &mut cx), Poll::Ready(written(7)));
        assert!(p.is_empty());
        assert!(!p.complete(a, written(9)), "late responses are dropped");
    }

    #[test]
    fn in_flight_limit_answers_429() {
        let mut p = PendingRequests::new(2);
        let a = p.begin().unwrap();
        p.begin().unwrap();
        let err = p.begin().unwrap_err();
        assert_eq!(err.status, 429);
        p.cancel(a);
        assert!(p.begin().is_ok());
    }

    #[test]
    fn fail_all_answers_every_waiting_request() {
        let mut p = PendingRequests::new(10);
        let a = p.begin().unwrap();
        let b = p.begin().unwrap();
        p.complete(b, written(3));
        p.fail_all(&ControlError::no_leader());
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        assert_eq!(p.poll(a, &mut cx), Poll::Ready(Err(ControlError::no_leader())));
        assert_eq!(
            p.poll(b, &mut cx),
            Poll::Ready(written(3)),
            "answered requests keep their answer"
        );
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("legacy runtime");
        rt.block_on(f)
    }

    #[test]
    fn unreachable_control_plane_is_no_leader_at_once() {
        let dir = std::env::temp_dir().join(format!("pc-fwd-{}", std::process::id()));
        let forwarder = Forwarder::new(0, dir.join("absent.sock"));
        let started = Instant::now();
        let result = block_on(async { forwarder.request(ControlOp::Stats).await });
        assert_eq!(result, Err(ControlError::no_leader()));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(forwarder.in_flight(), 0, "the failed request left no slot behind");
    }

    #[test]
    fn requests_and_responses_flow_over_a_real_socket() {
        use std::io::Write;
        use std::os::unix::net::UnixListener;
        let dir = std::env::temp_dir().join(format!("pc-fwd-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let hello: Hello = frame::read_blocking(&mut sock).unwrap();
            assert_eq!(hello, Hello::Requests { core: 3 });
            // Answer two requests in reverse order.
            let first: ControlRequest = frame::read_blocking(&mut sock).unwrap();
            let second: ControlRequest = frame::read_blocking(&mut sock).unwrap();
            for req in [second, first] {
                let reply = ControlResponse {
                    id: req.id,
                    result: Ok(ControlReply::Done),
                };
                sock.write_all(&frame::encode(&reply).unwrap()).unwrap();
            }
            // Then hang up with a third request unanswered.
            let _third: ControlRequest = frame::read_blocking(&mut sock).unwrap();
        });
        let forwarder = Forwarder::new(3, path.clone());
        let (a, b, c) = block_on(async {
            let (a, b) = monoio::join!(forwarder.request(ControlOp::Stats), forwarder.request(ControlOp::Leave));
            let c = forwarder.request(ControlOp::Stats).await;
            (a, b, c)
        });
        assert_eq!(a, Ok(ControlReply::Done));
        assert_eq!(b, Ok(ControlReply::Done));
        assert_eq!(
            c,
            Err(ControlError::no_leader()),
            "a lost connection fails its requests"
        );
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
