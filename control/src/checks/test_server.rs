//! A canned HTTP/1.1 server on 127.0.0.1 for the check tests.
//!
//! Paths: `/ok` 200 `ok`; `/busy` 429 `slow down`; `/fail` 500 `broken`;
//! `/slow` waits 5 s then 200; `/redirect` 302 to `/ok`; `/loop` 302 to
//! itself; `/big` 200 with 10,000 bytes ending in `0123456789`; `/endless`
//! 200 streaming `x` until the client goes (bounded at 64 MiB and 10 s);
//! `/echo` 200 with the request as received (head and body).
//!
//! [`TestHttpServer::start_tls`] serves the same over TLS with the
//! self-signed certificate in `testdata/` (for `checks.test` only), and
//! records the SNI name each client sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::rustls;

/// Largest request head (plus body) the server reads.
const REQUEST_BYTES_MAX: usize = 64 * 1024;
const ENDLESS_BYTES_MAX: usize = 64 << 20;
const ENDLESS_DURATION_MAX: Duration = Duration::from_secs(10);

/// The server; stops when dropped.
pub struct TestHttpServer {
    scheme: &'static str,
    address: String,
    accept_task: JoinHandle<()>,
    /// SNI names sent by TLS clients (`None`: no SNI), in order.
    server_names: Arc<Mutex<Vec<Option<String>>>>,
}

impl TestHttpServer {
    /// Listens on an ephemeral port.
    pub async fn start() -> TestHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind test server");
        let address = listener.local_addr().expect("test server address").to_string();
        let accept_task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        TestHttpServer {
            scheme: "http",
            address,
            accept_task,
            server_names: Arc::default(),
        }
    }

    /// Listens on an ephemeral port, serving TLS.
    pub async fn start_tls() -> TestHttpServer {
        let cert = CertificateDer::from_pem_slice(include_bytes!("testdata/checks_test_cert.pem")).expect("cert");
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/checks_test_key.pem")).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind test server");
        let address = listener.local_addr().expect("test server address").to_string();
        let server_names: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let names = server_names.clone();
        let accept_task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let names = names.clone();
                tokio::spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let name = tls.get_ref().1.server_name().map(str::to_string);
                    names.lock().expect("names").push(name);
                    serve(tls).await;
                });
            }
        });
        TestHttpServer {
            scheme: "https",
            address,
            accept_task,
            server_names,
        }
    }

    /// `<scheme>://<address><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.address)
    }

    /// `<ip>:<port>` the server listens on.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// SNI names of the TLS handshakes completed so far.
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.server_names.lock().expect("names").clone()
    }
}

impl Drop for TestHttpServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// An address where nothing listens.
pub async fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address").to_string()
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let path = request.split(' ').nth(1).unwrap_or("/").to_string();
    let (status, extra_headers, body) = match path.as_str() {
        "/ok" => ("200 OK", String::new(), "ok".to_string()),
        "/busy" => ("429 Too Many Requests", String::new(), "slow down".to_string()),
        "/fail" => ("500 Internal Server Error", String::new(), "broken".to_string()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            ("200 OK", String::new(), "late".to_string())
        }
        "/redirect" => ("302 Found", "Location: /ok\r\n".to_string(), String::new()),
        "/loop" => ("302 Found", "Location: /loop\r\n".to_string(), String::new()),
        "/big" => ("200 OK", String::new(), format!("{}0123456789", "a".repeat(9_990))),
        "/echo" => ("200 OK", String::new(), request),
        "/endless" => return stream_endless(stream).await,
        _ => ("404 Not Found", String::new(), "no such path".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn stream_endless<S: AsyncWrite + Unpin>(mut stream: S) {
    if stream
        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let chunk = vec![b'x'; 16 * 1024];
    let started = Instant::now();
    let mut sent = 0;
    while sent < ENDLESS_BYTES_MAX && started.elapsed() < ENDLESS_DURATION_MAX {
        if stream.write_all(&chunk).await.is_err() {
            return;
        }
        sent += chunk.len();
    }
}

/// Reads the head and a `Content-Length` body; `None` on a bad request.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + body_len {
                return Some(String::from_utf8_lossy(&buf).into_owned());
            }
        }
        if buf.len() > REQUEST_BYTES_MAX {
            return None;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
