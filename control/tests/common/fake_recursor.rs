//! A fake upstream DNS resolver on its own loopback address, for recursor
//! tests: every question gets one A record (`answer`, with `ttl_s`) or,
//! when `rcode` is not NOERROR, that rcode and no records. It records the
//! names it was asked for; it stops on [`FakeRecursor::stop`] (or after a
//! bounded number of 100 ms polls).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record};

use super::agent::fresh_loopback_ip;

/// Most 100 ms polls one responder makes (10 minutes).
const POLLS_MAX: u32 = 6_000;

/// A running fake resolver.
pub struct FakeRecursor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl FakeRecursor {
    /// Answers every question with an A record for `answer`.
    pub fn answering(answer: Ipv4Addr, ttl_s: u32) -> FakeRecursor {
        FakeRecursor::start(answer, ttl_s, ResponseCode::NoError)
    }

    /// Answers every query with `rcode` and no records.
    pub fn failing(rcode: ResponseCode) -> FakeRecursor {
        assert_ne!(rcode, ResponseCode::NoError, "a failing recursor fails");
        FakeRecursor::start(Ipv4Addr::UNSPECIFIED, 0, rcode)
    }

    fn start(answer: Ipv4Addr, ttl_s: u32, rcode: ResponseCode) -> FakeRecursor {
        let socket = UdpSocket::bind((fresh_loopback_ip(), 5353)).expect("bind the fake recursor");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut asked = Vec::new();
            let mut buf = [0u8; 4096];
            for _ in 0..POLLS_MAX {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut reply = Message::new(q.metadata.id, MessageType::Response, q.metadata.op_code);
                reply.metadata.recursion_desired = q.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.metadata.response_code = rcode;
                for question in &q.queries {
                    asked.push(question.name().to_ascii());
                    reply.add_query(question.clone());
                    if rcode == ResponseCode::NoError {
                        reply.add_answer(Record::from_rdata(
                            question.name().clone(),
                            ttl_s,
                            RData::A(answer.into()),
                        ));
                    }
                }
                let _ = socket.send_to(&reply.to_vec().expect("encode"), from);
            }
            asked
        });
        FakeRecursor {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the responder; the names it was asked for, in order.
    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .map_or_else(Vec::new, |t| t.join().expect("fake recursor thread"))
    }
}

impl Drop for FakeRecursor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
