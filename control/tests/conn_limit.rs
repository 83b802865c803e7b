//! `limits.http_max_conns_per_client`: concurrent HTTP connections one
//! client IP may hold. Beyond it the data plane answers 429 (Consul's body)
//! and closes; a closed connection frees its place.

mod common;

use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::agent::fresh_loopback_ip;
use common::http::{encode_request, read_response, Response};
use common::AgentSpec;

/// Connect, read and write timeout of every connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closed connection may take to free its place.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// The limit configured in the test.
const LIMIT: usize = 5;
/// Consul's answer to a client over the limit.
const OVER_LIMIT_BODY: &str = "Your IP is issuing too many concurrent connections, please rate limit your calls\n";

/// A keep-alive connection from a chosen source address.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Client> {
        let SocketAddr::V4(server) = server else {
            panic!("the agent listens on IPv4 loopback");
        };
        // SAFETY: plain syscall; the descriptor is owned right away.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let local = sockaddr_in(SocketAddrV4::new(source, 0));
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `local` is a valid sockaddr_in of `len` bytes.
        if unsafe { libc::bind(fd.as_raw_fd(), (&local as *const libc::sockaddr_in).cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let remote = sockaddr_in(server);
        // SAFETY: as above.
        if unsafe { libc::connect(fd.as_raw_fd(), (&remote as *const libc::sockaddr_in).cast(), len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from(fd);
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    fn get(&mut self, target: &str) -> io::Result<Response> {
        let stream = self.reader.get_mut();
        stream.write_all(&encode_request("GET", target, &[], b"", false))?;
        stream.flush()?;
        read_response(&mut self.reader, false)
    }

    /// Whether the server closed the connection (EOF or reset).
    fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }
}

fn sockaddr_in(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn config_file(dir: &std::path::Path, limit: usize) -> String {
    let path = dir.join("limits.json");
    std::fs::write(
        &path,
        format!(r#"{{"limits":{{"http_max_conns_per_client":{limit}}}}}"#),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn connections_over_the_per_ip_limit_get_429_until_one_closes() {
    let dir = tempfile::tempdir().expect("config dir");
    let agent = AgentSpec::dev()
        .arg(format!("-config-file={}", config_file(dir.path(), LIMIT)))
        .spawn();
    let server = agent.http_addr();
    // A source address of our own, so no other connection counts against it.
    let source = fresh_loopback_ip();

    let mut held: Vec<Client> = (0..LIMIT)
        .map(|i| {
            let mut c = Client::connect(source, server).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            c.get("/v1/status/leader").unwrap().expect_status(200);
            c
        })
        .collect();
    // Each stays usable (keep-alive) while at the limit.
    for c in &mut held {
        c.get("/v1/agent/self").unwrap().expect_status(200);
    }

    let mut over = Client::connect(source, server).expect("the kernel accepts the sixth connection");
    let refused = over
        .get("/v1/status/leader")
        .expect("the sixth connection is answered, not dropped");
    refused.expect_status(429);
    assert_eq!(refused.text(), OVER_LIMIT_BODY);
    assert!(over.closed_by_server(), "a refused connection is closed after its 429");

    // Another client IP is not affected.
    agent.get("/v1/status/leader").expect_status(200);

    // Closing one frees a place (the data plane notices the close
    // asynchronously, so poll, bounded by time and attempts).
    drop(held.pop());
    let started = Instant::now();
    let mut attempts = 0;
    let served = loop {
        attempts += 1;
        let mut c = Client::connect(source, server).unwrap();
        let r = c.get("/v1/status/leader").unwrap();
        if r.status == 200 {
            break c;
        }
        assert_eq!(r.status, 429, "only 200 or 429 are expected: {r:?}");
        assert!(
            started.elapsed() < RELEASE_TIMEOUT && attempts < 200,
            "a closed connection did not free its place"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    held.push(served);
    // At the limit again.
    let mut over = Client::connect(source, server).unwrap();
    over.get("/v1/status/leader").unwrap().expect_status(429);
    for c in &mut held {
        c.get("/v1/status/leader").unwrap().expect_status(200);
    }
}
