//! HTTP checks (Consul's `CheckHTTP`): 2xx passing, 429 warning, anything
//! else critical; the output is `HTTP <method> <url>: <status> Output:
//! <body tail>`, and failures read like Go's `*url.Error`
//! (`Get "<url>": dial tcp 127.0.0.1:1: connect: connection refused`).
//!
//! Like Consul: keep-alives off (a connection per probe), redirects
//! followed (at most 10) unless disabled, `User-Agent: Consul Health Check`
//! and `Accept: text/plain, text/*, */*` unless the check sets them, a
//! `Host` header overrides the request's host. Unlike Go's client, proxy
//! environment variables are ignored: checks target local services.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use proconsul_shared::state::CheckStatus;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, HOST, USER_AGENT};
use reqwest::{Client, Method, Url};

use super::go_text::go_errno_text;
use super::output::TailBuffer;
use super::spec::deadline_after;
use super::tcp::dial_error_output;

/// Consul's `User-Agent` for HTTP checks.
pub const USER_AGENT_VALUE: &str = "Consul Health Check";
/// Consul's default `Accept` for HTTP checks.
pub const ACCEPT_VALUE: &str = "text/plain, text/*, */*";
/// Redirects followed before giving up (Go's client default).
pub const REDIRECTS_MAX: usize = 10;
/// Body bytes read per probe at most; only the last `output_max_bytes`
/// of them are kept, and reading stops here.
pub const HTTP_BODY_READ_BYTES_MAX: u64 = 1 << 20;

/// The request an HTTP check sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    pub url: String,
    /// Empty means `GET`.
    pub method: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    pub tls_server_name: String,
    pub disable_redirects: bool,
}

/// A client with the TLS and redirect settings of a check; shareable by
/// every check with the same settings.
pub fn build_client(tls_skip_verify: bool, disable_redirects: bool) -> Result<Client, reqwest::Error> {
    client_builder(tls_skip_verify, disable_redirects).build()
}

fn client_builder(tls_skip_verify: bool, disable_redirects: bool) -> reqwest::ClientBuilder {
    let redirects = if disable_redirects {
        reqwest::redirect::Policy::none()
    } else {
        reqwest::redirect::Policy::limited(REDIRECTS_MAX)
    };
    Client::builder()
        .redirect(redirects)
        .danger_accept_invalid_certs(tls_skip_verify)
        .pool_max_idle_per_host(0)
        .no_proxy()
}

/// One probe. `client` must match the check's TLS and redirect settings
/// (see [`build_client`]).
pub async fn probe_http(
    client: &Client,
    check: &HttpCheck,
    timeout: Duration,
    output_max_bytes: usize,
) -> (CheckStatus, String) {
    match send_and_read(client, check, timeout, output_max_bytes).await {
        Ok(result) => result,
        Err(text) => (CheckStatus::Critical, text),
    }
}

async fn send_and_read(
    client: &Client,
    check: &HttpCheck,
    timeout: Duration,
    output_max_bytes: usize,
) -> Result<(CheckStatus, String), String> {
    let deadline = deadline_after(timeout);
    let method_text = if check.method.is_empty() {
        "GET"
    } else {
        check.method.as_str()
    };
    let method =
        Method::from_bytes(method_text.as_bytes()).map_err(|_| format!("net/http: invalid method {method_text:?}"))?;
    let url = Url::parse(&check.url).map_err(|e| format!("parse {:?}: {e}", check.url))?;
    let mut headers = request_headers(&check.headers).map_err(|e| go_url_error(method_text, &check.url, e))?;

    let mut client = client.clone();
    let mut request_url = url.clone();
    if !check.tls_server_name.is_empty() && url.scheme() == "https" {
        let authority = authority(&url);
        let addr = tokio::time::timeout_at(deadline, resolve_first(&url))
            .await
            .map_err(|_| go_url_error(method_text, &check.url, "context deadline exceeded"))?
            .map_err(|e| go_url_error(method_text, &check.url, e))?;
        client = client_builder(check.tls_skip_verify, check.disable_redirects)
            .resolve(&check.tls_server_name, addr)
            .build()
            .map_err(|e| go_url_error(method_text, &check.url, error_chain_text(&e)))?;
        request_url
            .set_host(Some(&check.tls_server_name))
            .map_err(|e| go_url_error(method_text, &check.url, format!("invalid TLS server name: {e}")))?;
        if !headers.contains_key(HOST) {
            let host = HeaderValue::from_str(&authority)
                .map_err(|_| go_url_error(method_text, &check.url, "net/http: invalid Host header"))?;
            headers.insert(HOST, host);
        }
    }

    let mut request = client.request(method, request_url).headers(headers).timeout(timeout);
    if !check.body.is_empty() {
        request = request.body(check.body.clone());
    }
    let mut response = match tokio::time::timeout_at(deadline, request.send()).await {
        Err(_) => return Err(go_url_error(method_text, &check.url, timeout_cause())),
        Ok(Err(error)) => return Err(go_url_error(method_text, &check.url, request_error_cause(&error, &url))),
        Ok(Ok(response)) => response,
    };

    let status = response.status();
    let mut body = TailBuffer::new(output_max_bytes);
    // A body that errors or outlives the deadline is shown as far as read:
    // Consul logs the read error and still judges by the status code.
    while body.total_written() < HTTP_BODY_READ_BYTES_MAX {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => body.write(&chunk),
            _ => break,
        }
    }
    let status_text = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    let output = format!(
        "HTTP {method_text} {}: {status_text} Output: {}",
        check.url,
        body.text()
    );
    let check_status = if status.is_success() {
        CheckStatus::Passing
    } else if status.as_u16() == 429 {
        CheckStatus::Warning
    } else {
        CheckStatus::Critical
    };
    Ok((check_status, output))
}

/// The check's headers plus Consul's defaults.
fn request_headers(configured: &BTreeMap<String, Vec<String>>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, values) in configured {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
        for value in values {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("net/http: invalid header field value for {name:?}"))?;
            headers.append(header.clone(), value);
        }
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    }
    if !headers.contains_key(ACCEPT) {
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
    }
    Ok(headers)
}

/// Go's `*url.Error` text: `Get "<url>": <cause>`.
fn go_url_error(method: &str, url: &str, cause: impl Display) -> String {
    format!("{} {url:?}: {cause}", go_url_error_op(method))
}

/// Go's `urlErrorOp`: the method with all but its first letter lower-cased.
fn go_url_error_op(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => std::iter::once(first)
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => "Get".to_string(),
    }
}

fn timeout_cause() -> &'static str {
    "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
}

fn request_error_cause(error: &reqwest::Error, url: &Url) -> String {
    if error.is_timeout() {
        return timeout_cause().to_string();
    }
    if error.is_redirect() {
        return format!("stopped after {REDIRECTS_MAX} redirects");
    }
    if let Some(io) = find_io_error(error) {
        if io.raw_os_error().is_some() || io.kind() == std::io::ErrorKind::TimedOut {
            if error.is_connect() {
                return dial_error_output(authority(url), io);
            }
            return go_errno_text(io);
        }
        // Not a system error: a TLS failure wrapped in an I/O error.
        if error.is_connect() {
            return format!(
                "tls: {}",
                io.get_ref().map_or_else(|| io.to_string(), |inner| inner.to_string())
            );
        }
    }
    error_chain_text(error)
}

fn find_io_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut depth = 0;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        depth += 1;
        if depth > 16 {
            return None;
        }
        current = e.source();
    }
    None
}

/// The causes of `error`, joined Go-style (`a: b: c`), without reqwest's
/// own "error sending request" wrapper.
fn error_chain_text(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut current = std::error::Error::source(error);
    while let Some(e) = current {
        if parts.len() >= 8 {
            break;
        }
        parts.push(e.to_string());
        current = e.source();
    }
    if parts.is_empty() {
        return error.to_string();
    }
    parts.join(": ")
}

/// `host:port` of a URL (the port defaulted by scheme).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

async fn resolve_first(url: &Url) -> Result<std::net::SocketAddr, String> {
    let authority = authority(url);
    let host = url.host_str().unwrap_or("");
    tokio::net::lookup_host(&authority)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("dial tcp: lookup {host}: no such host"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_server::{refused_address, TestHttpServer};

    fn check(url: String) -> HttpCheck {
        HttpCheck {
            url,
            method: String::new(),
            headers: BTreeMap::new(),
            body: String::new(),
            tls_skip_verify: false,
            tls_server_name: String::new(),
            disable_redirects: false,
        }
    }

    async fn probe(check: &HttpCheck, timeout: Duration, output_max_bytes: usize) -> (CheckStatus, String) {
        let client = build_client(check.tls_skip_verify, check.disable_redirects).unwrap();
        probe_http(&client, check, timeout, output_max_bytes).await
    }

    #[tokio::test]
    async fn status_codes_map_to_statuses_with_consul_output() {
        let server = TestHttpServer::start().await;
        let t = Duration::from_secs(5);
        let url = server.url("/ok");
        assert_eq!(
            probe(&check(url.clone()), t, 4096).await,
            (CheckStatus::Passing, format!("HTTP GET {url}: 200 OK Output: ok"))
        );
        let url = server.url("/busy");
        assert_eq!(
            probe(&check(url.clone()), t, 4096).await,
            (
                CheckStatus::Warning,
                format!("HTTP GET {url}: 429 Too Many Requests Output: slow down")
            )
        );
        let url = server.url("/fail");
        assert_eq!(
            probe(&check(url.clone()), t, 4096).await,
            (
                CheckStatus::Critical,
                format!("HTTP GET {url}: 500 Internal Server Error Output: broken")
            )
        );
    }

    #[tokio::test]
    async fn method_headers_and_body_are_sent() {
        let server = TestHttpServer::start().await;
        let mut c = check(server.url("/echo"));
        c.method = "POST".to_string();
        c.body = "payload".to_string();
        c.headers
            .insert("X-Probe".to_string(), vec!["one".to_string(), "two".to_string()]);
        let (status, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Passing);
        let body = output.split_once(" Output: ").unwrap().1;
        assert!(output.starts_with(&format!("HTTP POST {}: 200 OK", c.url)), "{output}");
        assert!(body.starts_with("POST /echo HTTP/1.1\r\n"), "{body}");
        assert!(body.contains("user-agent: Consul Health Check\r\n"), "{body}");
        assert!(body.contains("accept: text/plain, text/*, */*\r\n"), "{body}");
        assert!(
            body.contains("x-probe: one\r\n") && body.contains("x-probe: two\r\n"),
            "{body}"
        );
        assert!(body.ends_with("\r\n\r\npayload"), "{body}");
        // A configured User-Agent replaces Consul's.
        c.headers.insert("User-Agent".to_string(), vec!["mine".to_string()]);
        let (_, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert!(
            output.contains("user-agent: mine\r\n") && !output.contains("Consul Health Check"),
            "{output}"
        );
    }

    #[tokio::test]
    async fn redirects_are_followed_unless_disabled() {
        let server = TestHttpServer::start().await;
        let url = server.url("/redirect");
        let followed = probe(&check(url.clone()), Duration::from_secs(5), 4096).await;
        assert_eq!(
            followed,
            (CheckStatus::Passing, format!("HTTP GET {url}: 200 OK Output: ok"))
        );
        let mut c = check(url.clone());
        c.disable_redirects = true;
        let (status, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, format!("HTTP GET {url}: 302 Found Output: "));
        let url = server.url("/loop");
        let (status, output) = probe(&check(url.clone()), Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, format!("Get {url:?}: stopped after 10 redirects"));
    }

    #[tokio::test]
    async fn slow_server_times_out_with_go_text() {
        let server = TestHttpServer::start().await;
        let url = server.url("/slow");
        let started = std::time::Instant::now();
        let (status, output) = probe(&check(url.clone()), Duration::from_millis(200), 4096).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
        );
    }

    #[tokio::test]
    async fn refused_connection_reads_like_go() {
        let address = refused_address().await;
        let url = format!("http://{address}/health");
        let mut c = check(url.clone());
        c.method = "PUT".to_string();
        let (status, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(
            output,
            format!("Put {url:?}: dial tcp {address}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn body_is_bounded_to_its_tail() {
        let server = TestHttpServer::start().await;
        let url = server.url("/big");
        let (status, output) = probe(&check(url.clone()), Duration::from_secs(5), 8).await;
        assert_eq!(status, CheckStatus::Passing);
        // `/big` sends 10,000 bytes ending in "...0123456789".
        assert_eq!(output, format!("HTTP GET {url}: 200 OK Output: 23456789"));
    }

    #[tokio::test]
    async fn body_reading_stops_at_the_read_limit() {
        let server = TestHttpServer::start().await;
        let url = server.url("/endless");
        let started = std::time::Instant::now();
        let (status, output) = probe(&check(url.clone()), Duration::from_secs(10), 4).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, format!("HTTP GET {url}: 200 OK Output: xxxx"));
    }

    #[tokio::test]
    async fn bad_requests_are_critical_not_panics() {
        let t = Duration::from_secs(1);
        let (status, output) = probe(&check("not a url".to_string()), t, 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.starts_with("parse \"not a url\": "), "{output}");
        let mut c = check("http://127.0.0.1:1/".to_string());
        c.method = "BAD METHOD".to_string();
        assert_eq!(probe(&c, t, 4096).await.1, "net/http: invalid method \"BAD METHOD\"");
        let mut c = check("http://127.0.0.1:1/".to_string());
        c.headers.insert("bad name".to_string(), vec!["v".to_string()]);
        assert_eq!(
            probe(&c, t, 4096).await.1,
            "Get \"http://127.0.0.1:1/\": net/http: invalid header field name \"bad name\""
        );
    }

    #[tokio::test]
    async fn untrusted_certificates_fail_unless_skip_verify() {
        let server = TestHttpServer::start_tls().await;
        let url = server.url("/ok");
        let (status, output) = probe(&check(url.clone()), Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(
            output.starts_with(&format!("Get {url:?}: tls: invalid peer certificate")),
            "{output}"
        );
        let mut c = check(url.clone());
        c.tls_skip_verify = true;
        let passing = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(
            passing,
            (CheckStatus::Passing, format!("HTTP GET {url}: 200 OK Output: ok"))
        );
    }

    #[tokio::test]
    async fn tls_server_name_is_sent_as_sni_and_host_stays_the_urls() {
        let server = TestHttpServer::start_tls().await;
        let url = server.url("/echo");
        let mut c = check(url.clone());
        c.tls_skip_verify = true;
        c.tls_server_name = "checks.test".to_string();
        let (status, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Passing, "{output}");
        assert!(
            output.starts_with(&format!("HTTP GET {url}: 200 OK Output: GET /echo HTTP/1.1\r\n")),
            "{output}"
        );
        assert!(output.contains(&format!("host: {}\r\n", server.address())), "{output}");
        assert_eq!(server.server_names(), vec![Some("checks.test".to_string())]);
        // Verification is against the server name: a certificate for
        // `checks.test` that no root vouches for is still refused.
        c.tls_skip_verify = false;
        let (status, output) = probe(&c, Duration::from_secs(5), 4096).await;
        assert_eq!(status, CheckStatus::Critical);
        assert!(output.contains("certificate"), "{output}");
    }

    #[test]
    fn url_error_op_like_go() {
        assert_eq!(go_url_error_op("GET"), "Get");
        assert_eq!(go_url_error_op("post"), "post");
        assert_eq!(go_url_error_op("PATCH"), "Patch");
    }
}
