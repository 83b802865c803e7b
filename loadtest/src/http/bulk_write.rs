//! Loading data through the HTTP API before a read load: numbered writes
//! spread over a few blocking keep-alive connections, each write retried a
//! bounded number of times, the first failure stopping every writer.
//! Consul answers both KV `PUT` and catalog register with `true`, which is
//! what a write must answer here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::limits::PREPARE_TRIES_PER_KEY_MAX;
use crate::write::client::Connection;

/// Pause before retrying a failed write, multiplied by the attempt number.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One writer's keep-alive connection (framing and reconnects are
/// [`Connection`]'s).
pub struct Writer {
    conn: Connection,
}

impl Writer {
    /// A writer to `target`; connects on first use. `timeout` bounds the
    /// connect and every read and write.
    pub fn new(target: SocketAddr, timeout: Duration) -> Writer {
        Writer {
            conn: Connection::new(target, timeout),
        }
    }

    /// Sends one request and reads its response: `(status, body)`.
    pub fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let answer = self.conn.exchange(request)?;
        Ok((answer.status, answer.body))
    }

    /// Sends one write until it answers `200 true`: server errors (5xx)
    /// and IO failures are retried up to [`PREPARE_TRIES_PER_KEY_MAX`]
    /// times; client errors (4xx) fail at once.
    pub fn write(&mut self, request: &[u8], what: &str) -> anyhow::Result<()> {
        let mut last = String::new();
        for attempt in 1..=PREPARE_TRIES_PER_KEY_MAX {
            match self.exchange(request) {
                Ok((200, body)) if body.trim_ascii() == b"true" => return Ok(()),
                Ok((status, body)) => {
                    last = format!("status {status}: {}", String::from_utf8_lossy(&body).trim());
                    if status < 500 {
                        break;
                    }
                }
                Err(e) => {
                    self.conn.close();
                    last = format!("{e:#}");
                }
            }
            if attempt < PREPARE_TRIES_PER_KEY_MAX {
                std::thread::sleep(RETRY_PAUSE * attempt);
            }
        }
        bail!("writing {what} failed: {last}")
    }
}

/// How a bulk load went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BulkOutcome {
    pub written: u64,
    pub elapsed_s: f64,
}

/// Performs writes number `0..count` on `connections` writers.
/// `request_for(i)` gives a name for errors and the request bytes.
pub fn write_all<F>(
    target: SocketAddr,
    connections: usize,
    timeout: Duration,
    count: u64,
    request_for: F,
) -> anyhow::Result<BulkOutcome>
where
    F: Fn(u64) -> (String, Vec<u8>) + Sync,
{
    assert!(connections > 0, "validated: at least one writer");
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let results: Vec<anyhow::Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..connections)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let mut writer = Writer::new(target, timeout);
                    let mut written = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return Ok(written);
                        }
                        let (what, request) = request_for(i);
                        if let Err(e) = writer.write(&request, &what) {
                            // Stop the other writers too.
                            next.store(count, Ordering::Relaxed);
                            return Err(e);
                        }
                        written += 1;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer thread panicked")))
            })
            .collect()
    });
    let mut written = 0;
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(n) => written += n,
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!("{written} writes done, then: {}", failures.join("; "));
    }
    Ok(BulkOutcome {
        written,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::client::tests::fake_server;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn writer(target: SocketAddr) -> Writer {
        Writer::new(target, Duration::from_secs(5))
    }

    #[test]
    fn retries_server_errors_then_succeeds() {
        let addr = fake_server(vec![
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 17\r\n\r\nNo cluster leader",
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue",
        ]);
        writer(addr).write(b"PUT /x HTTP/1.1\r\n\r\n", "x").unwrap();
    }

    #[test]
    fn client_errors_are_not_retried() {
        let addr = fake_server(vec![
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!",
        ]);
        let err = writer(addr)
            .write(b"PUT /x HTTP/1.1\r\n\r\n", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("status 413") && err.contains("too big!"), "{err}");
    }

    #[test]
    fn retries_are_bounded() {
        let answer: &'static [u8] = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbusy";
        let addr = fake_server(vec![answer; PREPARE_TRIES_PER_KEY_MAX as usize + 1]);
        let started = Instant::now();
        let err = writer(addr)
            .write(b"PUT /x HTTP/1.1\r\n\r\n", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("status 500: busy"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn write_all_spreads_numbered_writes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Two connections, each answering `true` to every request it reads.
        std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let n = match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ntrue")
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                });
            }
        });
        let out = write_all(addr, 2, Duration::from_secs(5), 50, |i| {
            (format!("w{i}"), format!("GET /{i} HTTP/1.1\r\n\r\n").into_bytes())
        })
        .unwrap();
        assert_eq!(out.written, 50);
    }
}
