//! Runs one parsed request to its response: decode the target, call the
//! pure API, and carry out what it asked for (forward to the control plane,
//! or park a blocking read until its watch set changes).

use std::future::{poll_fn, Future};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use monoio::io::{CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;

use super::conn::within;
use super::direct_send::{recv_ready, send_now, SendNow};
use super::limits::{PARKED_READ_BYTES, READ_FIRST_BYTES};
use super::parse::Request;
use super::response::{write_plain_error, write_response, Framing};
use super::shared_render::RenderKey;
use super::target::{parse_target, TargetError};
use crate::api::{self, ApiRequest, Block, Outcome, Response};
use crate::core::{Core, WaitOutcome};

/// What the connection does after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep serving (if the request allows keep-alive).
    Continue,
    /// Close after flushing.
    Close,
}

/// Where a request stands after [`respond`].
#[derive(Debug)]
pub enum Step {
    /// Answered (the response is in `out`).
    Answered(Flow),
    /// A blocking read that must wait for a change: the connection
    /// releases its buffers and hands this to [`park`].
    Park(ParkedRequest),
}

/// A blocking read between [`respond`] and [`park`]: owns the little it
/// needs of the request (method, target, body: usually tens of bytes) so
/// the connection holds no read or write buffer while it waits.
#[derive(Debug)]
pub struct ParkedRequest {
    method: Box<str>,
    target: Box<str>,
    body: Box<[u8]>,
    framing: Framing,
    first: Block,
}

impl ParkedRequest {
    /// Bytes of heap this request keeps while parked (its copies of the
    /// method, target and body).
    pub fn held_bytes(&self) -> usize {
        self.method.len() + self.target.len() + self.body.len()
    }
}

/// Answers `request`, appending the response to `out`, or hands back a
/// blocking read that has to park.
pub async fn respond(core: &Core, request: &Request<'_>, peer_ip: Option<std::net::IpAddr>, out: &mut Vec<u8>) -> Step {
    let framing = Framing {
        version_minor: request.version_minor,
        keep_alive: request.keep_alive,
        head_only: request.method == "HEAD",
    };
    let target = match parse_target(request.target) {
        Ok(target) => target,
        Err(TargetError::Path(super::query::PathError::BadEscape)) => {
            write_plain_error(
                out,
                400,
                Framing {
                    keep_alive: false,
                    ..framing
                },
                &super::date::now(),
            );
            return Step::Answered(Flow::Close);
        }
        Err(refused) => {
            write_response(out, &target_refusal(refused), framing, &super::date::now());
            return Step::Answered(Flow::Continue);
        }
    };
    let api_request = ApiRequest::new(request.method, &target.path, target.query, &request.body)
        .with_forwarding(target.raw_query, request.token)
        .with_peer_ip(peer_ip);
    if shareable(request.method, target.raw_query) && !crate::api::query::answers_per_request(&target.path) {
        if let Some(step) = respond_shared(core, request, &api_request, framing, out) {
            return step;
        }
    }
    let response = match answer(core, &api_request).await {
        Answer::Ready(response) => response,
        Answer::Block(first) => {
            return Step::Park(ParkedRequest {
                method: request.method.into(),
                target: request.target.into(),
                body: request.body.as_ref().into(),
                framing,
                first,
            })
        }
    };
    write_response(out, &response, framing, &super::date::now());
    Step::Answered(Flow::Continue)
}

/// Whether identical requests on the same view may share one rendering:
/// reads (`GET`, `HEAD`) that need no read-index barrier.
fn shareable(method: &str, raw_query: &str) -> bool {
    matches!(method, "GET" | "HEAD") && !raw_query.contains("consistent")
}

/// Answers a shareable read from the core's shared renderings, or renders
/// it (keeping the bytes when it was answered from the view); `None` when
/// the request must take the general path (forwarded to the control plane,
/// or a blocking read to park). The key and the view are those a woken
/// parked query uses, so a first answer and a wake-up share renderings.
fn respond_shared(
    core: &Core,
    request: &Request<'_>,
    api_request: &ApiRequest<'_>,
    framing: Framing,
    out: &mut Vec<u8>,
) -> Option<Step> {
    let view = core.view();
    let leader = core.leader_status();
    let date = super::date::now();
    let key = RenderKey {
        method: request.method,
        target: request.target,
        body: &request.body,
        framing,
        final_answer: false,
        leader,
        date: &date,
    };
    if let Some(bytes) = core.inner().shared_renders().borrow_mut().get(&view, &key) {
        out.extend_from_slice(&bytes);
        return Some(Step::Answered(Flow::Continue));
    }
    match api::handle(api_request, &view, leader) {
        Outcome::Ready(response) => {
            let start = out.len();
            write_response(out, &response, framing, &date);
            let bytes: Rc<[u8]> = out[start..].into();
            core.inner().shared_renders().borrow_mut().insert(&view, &key, bytes);
            Some(Step::Answered(Flow::Continue))
        }
        Outcome::Block(first) => Some(Step::Park(ParkedRequest {
            method: request.method.into(),
            target: request.target.into(),
            body: request.body.as_ref().into(),
            framing,
            first,
        })),
        Outcome::Forward(_) => None,
    }
}

/// Parks `parked` until it can be answered, then sends its response
/// directly from the woken task (see [`super::direct_send`]); what the
/// socket could not take at once is appended to `out` for the connection
/// to write. Bytes the client sends meanwhile, and after the answer its
/// next request (read for up to `idle`, by the read that watched for a
/// hang-up while parked), are appended to `parked_input`.
/// [`Flow::Close`] when the client hung up (while parked, or idle after
/// the answer) or the connection broke.
pub async fn park(
    core: &Core,
    parked: ParkedRequest,
    stream: &mut TcpStream,
    parked_input: &mut Vec<u8>,
    out: &mut Vec<u8>,
    idle: Duration,
) -> Flow {
    let ParkedRequest {
        method,
        target: raw_target,
        body,
        framing,
        first,
    } = parked;
    // Only the raw request is kept while parked (tens of bytes); the
    // parsed form is rebuilt on each wake-up that misses the shared
    // renderings, so it is not part of every parked connection's state.
    let raw = RawRequest {
        method: &method,
        target: &raw_target,
        body: &body,
        framing,
    };
    wait_and_answer(core, &raw, first, stream, parked_input, out, idle).await
}

/// A parked request as it arrived: what its response bytes depend on.
struct RawRequest<'a> {
    method: &'a str,
    target: &'a str,
    body: &'a [u8],
    framing: Framing,
}

/// What a parked query's re-run produced.
enum Rendered {
    /// The response bytes (possibly shared with identical queries).
    Bytes(Rc<[u8]>),
    /// Still nothing new for this query: park again.
    Block(Block),
}

/// Runs a parked query against the current view, or copies the rendering
/// an identical query woken by the same view already made (issue #4 item
/// 5). `final_answer`: the query stops waiting and answers whatever is
/// there, without blocking.
fn render_shared(core: &Core, raw: &RawRequest<'_>, final_answer: bool) -> Rendered {
    let view = core.view();
    let leader = core.leader_status();
    let date = super::date::now();
    let key = RenderKey {
        method: raw.method,
        target: raw.target,
        body: raw.body,
        framing: raw.framing,
        final_answer,
        leader,
        date: &date,
    };
    if let Some(bytes) = core.inner().shared_renders().borrow_mut().get(&view, &key) {
        return Rendered::Bytes(bytes);
    }
    let response = match parse_target(raw.target) {
        Ok(target) => {
            let mut request = ApiRequest::new(raw.method, &target.path, target.query, raw.body);
            request.may_block = !final_answer;
            match api::handle(&request, &view, leader) {
                Outcome::Ready(response) => response,
                Outcome::Block(next) if !final_answer => return Rendered::Block(next),
                Outcome::Block(_) | Outcome::Forward(_) => {
                    debug_assert!(false, "a parked read neither settled nor blocked");
                    Response::text(500, "blocking query did not settle")
                }
            }
        }
        Err(_) => {
            // It parsed before it parked; the same bytes cannot fail now.
            debug_assert!(false, "a parked request's target no longer parses");
            Response::text(500, "blocking query lost its target")
        }
    };
    let mut rendered = Vec::new();
    write_response(&mut rendered, &response, raw.framing, &date);
    let bytes: Rc<[u8]> = rendered.into();
    core.inner()
        .shared_renders()
        .borrow_mut()
        .insert(&view, &key, bytes.clone());
    Rendered::Bytes(bytes)
}

fn target_refusal(refused: TargetError) -> Response {
    match refused {
        TargetError::Unprintable => Response::empty(400),
        TargetError::Query(e) => Response::text(400, e.to_string()),
        TargetError::Path(_) => Response::text(400, "Invalid URL path: not valid UTF-8"),
    }
}

/// What the API made of a request.
enum Answer {
    Ready(Response),
    Block(Block),
}

/// The response to `request`, or the blocking read it has to park.
async fn answer(core: &Core, request: &ApiRequest<'_>) -> Answer {
    if let Err(refused) = crate::read_barrier::before_read(core, request).await {
        return Answer::Ready(refused);
    }
    let view = core.view();
    match api::handle(request, &view, core.leader_status()) {
        Outcome::Ready(response) => Answer::Ready(response),
        Outcome::Forward(forward) => {
            drop(view);
            // Boxed whole (the operation, the request and the reply): the
            // forwarding state is large and short-lived, and a
            // connection's task is as large as its largest state, which
            // would otherwise make every parked query carry it too.
            Answer::Ready(Box::pin(forward_and_render(core, forward)).await)
        }
        Outcome::Block(block) => Answer::Block(block),
    }
}

/// Forwards a write (or agent-local request) to the control plane and
/// renders its reply.
async fn forward_and_render(core: &Core, forward: api::Forward) -> Response {
    let api::Forward { op, reply } = forward;
    let result = core.request(op).await;
    api::render_reply(reply, result, &core.view())
}

/// What woke a parked read.
enum Event {
    /// The socket read finished (hang-up, error, or a pipelined request).
    Socket(std::io::Result<usize>, Vec<u8>),
    Woke(WaitOutcome),
}

/// Parks a blocking read (BLOCKING.md §12): until the result index passes
/// the client's, or the wait plus jitter ends, or the core is overloaded,
/// or the state was restored from a snapshot; then answers with the
/// current result ([`deliver`]). While parked, one read on the socket
/// notices a client that hangs up ([`Flow::Close`]: nobody to answer);
/// bytes it reads instead (a pipelined request) go to `parked_input`, and
/// hang-ups are no longer noticed for the rest of the wait.
async fn wait_and_answer(
    core: &Core,
    raw: &RawRequest<'_>,
    first: Block,
    stream: &mut TcpStream,
    parked_input: &mut Vec<u8>,
    out: &mut Vec<u8>,
    idle: Duration,
) -> Flow {
    let fd = stream.as_raw_fd();
    // A snapshot restore can lower every index: wake and answer at once.
    let generation = core.restore_generation();
    let jitter = api::blocking::jitter(first.wait, rand::random());
    let deadline = Instant::now() + first.wait + jitter;
    let canceller = Canceller::new();
    let mut socket_read = pin!(stream.cancelable_read(Vec::with_capacity(PARKED_READ_BYTES), canceller.handle()));
    let mut socket_done = false;
    let mut block = first;
    let bytes = loop {
        let woke = {
            let mut wait = pin!(core.wait_change(&block.watch, block.min_index, deadline));
            loop {
                let event = poll_fn(|cx| {
                    if !socket_done {
                        if let Poll::Ready((result, buf)) = socket_read.as_mut().poll(cx) {
                            return Poll::Ready(Event::Socket(result, buf));
                        }
                    }
                    wait.as_mut().poll(cx).map(Event::Woke)
                })
                .await;
                match event {
                    Event::Woke(outcome) => break outcome,
                    Event::Socket(result, buf) => {
                        socket_done = true;
                        match result {
                            Ok(n) if n > 0 => parked_input.extend_from_slice(&buf[..n]),
                            // EOF or error: nobody is waiting for the answer.
                            _ => return Flow::Close,
                        }
                    }
                }
            }
        };
        let restored = core.restore_generation() != generation;
        if woke == WaitOutcome::Changed && !restored && Instant::now() < deadline {
            match render_shared(core, raw, false) {
                Rendered::Block(next) => {
                    block = next;
                    continue;
                }
                Rendered::Bytes(bytes) => break bytes,
            }
        }
        // Timed out, overloaded, restored, or past the deadline: answer
        // with what is there.
        break match render_shared(core, raw, true) {
            Rendered::Bytes(bytes) => bytes,
            Rendered::Block(_) => {
                // `render_shared` never blocks a final answer.
                let mut bytes = Vec::new();
                let response = Response::text(500, "blocking query did not settle");
                write_response(&mut bytes, &response, raw.framing, &super::date::now());
                bytes.into()
            }
        };
    };
    let read = HangUpRead {
        canceller,
        future: socket_read,
        done: socket_done,
    };
    deliver(fd, &bytes, read, raw.framing.keep_alive, parked_input, out, idle).await
}

/// The read that watched a parked connection for a hang-up.
struct HangUpRead<'a, F> {
    canceller: Canceller,
    future: Pin<&'a mut F>,
    /// It already finished (its bytes are in the parked input).
    done: bool,
}

/// Sends a woken parked query's answer from this task, with one `send`
/// on the connection's descriptor `fd` while the hang-up read is still in
/// flight (no write submission, no cancellation to wait for). That read
/// then becomes the read of the client's next request (a watcher re-parks
/// at once): it is awaited for up to `idle`, and what it read, plus
/// whatever else is ready, goes to `parked_input`. If the socket cannot
/// take the whole answer, the read is cancelled and the rest is left in
/// `out` for the connection's ordinary (timed) write.
async fn deliver<F>(
    fd: RawFd,
    bytes: &[u8],
    read: HangUpRead<'_, F>,
    keep_alive: bool,
    parked_input: &mut Vec<u8>,
    out: &mut Vec<u8>,
    idle: Duration,
) -> Flow
where
    F: Future<Output = (std::io::Result<usize>, Vec<u8>)>,
{
    match send_now(fd, bytes) {
        SendNow::All => {}
        SendNow::Partial { sent } => {
            finish_socket_read(read.canceller, read.future, read.done, parked_input).await;
            out.extend_from_slice(&bytes[sent..]);
            return Flow::Continue;
        }
        SendNow::Broken => {
            finish_socket_read(read.canceller, read.future, read.done, parked_input).await;
            return Flow::Close;
        }
    }
    if read.done {
        return Flow::Continue;
    }
    if !keep_alive {
        // The connection closes after this answer: no next request.
        finish_socket_read(read.canceller, read.future, read.done, parked_input).await;
        return Flow::Continue;
    }
    match within(idle, read.future).await {
        Some((Ok(n), buf)) if n > 0 => {
            parked_input.extend_from_slice(&buf[..n]);
            if n >= PARKED_READ_BYTES {
                // A request longer than the hang-up read's buffer: take
                // the rest that is already there without another round.
                recv_ready(fd, parked_input, READ_FIRST_BYTES);
            }
            Flow::Continue
        }
        // Hung up, failed, or idle past the keep-alive timeout (the read
        // is cancelled when dropped).
        _ => Flow::Close,
    }
}

/// Cancels the hang-up read if it is still in flight and keeps any bytes
/// it raced in with.
async fn finish_socket_read<F>(
    canceller: Canceller,
    socket_read: std::pin::Pin<&mut F>,
    socket_done: bool,
    parked_input: &mut Vec<u8>,
) where
    F: Future<Output = (std::io::Result<usize>, Vec<u8>)>,
{
    if socket_done {
        return;
    }
    let _ = canceller.cancel();
    let (result, buf) = socket_read.await;
    if let Ok(n) = result {
        parked_input.extend_from_slice(&buf[..n]);
    }
}
