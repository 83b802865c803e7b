//! Runs one parsed request to its response: decode the target, call the
//! pure API, and carry out what it asked for (forward to the control plane,
//! or park a blocking read until its watch set changes).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Instant;

use monoio::io::{CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;

use super::limits::PARKED_READ_BYTES;
use super::parse::Request;
use super::response::{write_plain_error, write_response, Framing};
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
pub async fn respond(core: &Core, request: &Request<'_>, out: &mut Vec<u8>) -> Step {
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
        .with_forwarding(target.raw_query, request.token);
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

/// Parks `parked` until it can be answered, then appends its response to
/// `out`. Bytes the client sends meanwhile are appended to `parked_input`.
/// [`Flow::Close`] when the client hung up while parked (nothing written).
pub async fn park(
    core: &Core,
    parked: ParkedRequest,
    stream: &mut TcpStream,
    parked_input: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Flow {
    let ParkedRequest {
        method,
        target,
        body,
        framing,
        first,
    } = parked;
    let Ok(target) = parse_target(&target) else {
        // It parsed before it blocked; the same bytes cannot fail now.
        debug_assert!(false, "a parked request's target no longer parses");
        write_response(
            out,
            &Response::text(500, "blocking query lost its target"),
            framing,
            &super::date::now(),
        );
        return Flow::Continue;
    };
    let mut api_request = ApiRequest::new(&method, &target.path, target.query, &body);
    match wait_and_answer(core, &mut api_request, first, stream, parked_input).await {
        Some(response) => {
            write_response(out, &response, framing, &super::date::now());
            Flow::Continue
        }
        None => Flow::Close,
    }
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
    let view = core.view();
    match api::handle(request, &view, core.leader_status()) {
        Outcome::Ready(response) => Answer::Ready(response),
        Outcome::Forward(forward) => {
            drop(view);
            // Boxed: the forwarding state is large and short-lived, and a
            // connection's task is as large as its largest state, which
            // would otherwise make every parked query carry it too.
            let result = Box::pin(core.request(forward.op)).await;
            Answer::Ready(api::render_reply(forward.reply, result, &core.view()))
        }
        Outcome::Block(block) => Answer::Block(block),
    }
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
/// current result. While parked, one read on the socket notices a client
/// that hangs up (`None`: nobody to answer); bytes it reads instead (a
/// pipelined request) go to `parked_input`, and hang-ups are no longer
/// noticed for the rest of the wait.
async fn wait_and_answer(
    core: &Core,
    request: &mut ApiRequest<'_>,
    first: Block,
    stream: &mut TcpStream,
    parked_input: &mut Vec<u8>,
) -> Option<Response> {
    // A snapshot restore can lower every index: wake and answer at once.
    let generation = core.restore_generation();
    let jitter = api::blocking::jitter(first.wait, rand::random());
    let deadline = Instant::now() + first.wait + jitter;
    let canceller = Canceller::new();
    let mut socket_read = pin!(stream.cancelable_read(Vec::with_capacity(PARKED_READ_BYTES), canceller.handle()));
    let mut socket_done = false;
    let mut block = first;
    loop {
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
                            _ => return None,
                        }
                    }
                }
            }
        };
        let restored = core.restore_generation() != generation;
        if woke == WaitOutcome::Changed && !restored && Instant::now() < deadline {
            match api::handle(request, &core.view(), core.leader_status()) {
                Outcome::Block(next) => {
                    block = next;
                    continue;
                }
                Outcome::Ready(response) => {
                    finish_socket_read(canceller, socket_read, socket_done, parked_input).await;
                    return Some(response);
                }
                Outcome::Forward(_) => {
                    debug_assert!(false, "a blocking read turned into a write");
                }
            }
        }
        break;
    }
    finish_socket_read(canceller, socket_read, socket_done, parked_input).await;
    // Timed out, overloaded, restored, or past the deadline: answer with
    // what is there.
    request.may_block = false;
    match api::handle(request, &core.view(), core.leader_status()) {
        Outcome::Ready(response) => Some(response),
        _ => Some(Response::text(500, "blocking query did not settle")),
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
