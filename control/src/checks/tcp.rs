//! TCP checks: passing when a connection opens within the timeout
//! (Consul's `CheckTCP`). Outputs follow Go's `net.Dial` errors.

use std::net::SocketAddr;
use std::time::Duration;

use proconsul_shared::state::CheckStatus;
use tokio::net::TcpStream;

use super::go_text::go_errno_text;
use super::spec::deadline_after;

/// Resolved addresses tried per probe, in order.
pub const TCP_ADDRESSES_TRIED_MAX: usize = 4;

/// One probe of `address` (`host:port`).
pub async fn probe_tcp(address: &str, timeout: Duration) -> (CheckStatus, String) {
    let deadline = deadline_after(timeout);
    let addrs = match tokio::time::timeout_at(deadline, resolve(address)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(text)) => return (CheckStatus::Critical, text),
        Err(_) => {
            return (
                CheckStatus::Critical,
                format!("dial tcp: lookup {address}: i/o timeout"),
            )
        }
    };
    let mut first_error = None;
    for addr in addrs.iter().take(TCP_ADDRESSES_TRIED_MAX) {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => return (CheckStatus::Passing, format!("TCP connect {address}: Success")),
            Ok(Err(error)) => {
                first_error.get_or_insert_with(|| dial_error_output(*addr, &error));
            }
            Err(_) => {
                first_error.get_or_insert_with(|| format!("dial tcp {addr}: i/o timeout"));
                break;
            }
        }
    }
    let output = first_error.unwrap_or_else(|| format!("dial tcp: lookup {address}: no such host"));
    (CheckStatus::Critical, output)
}

/// Go's text for a failed connect to `addr`.
pub fn dial_error_output(addr: impl std::fmt::Display, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::TimedOut {
        return format!("dial tcp {addr}: i/o timeout");
    }
    format!("dial tcp {addr}: connect: {}", go_errno_text(error))
}

/// Resolves `host:port`; errors are Go's texts.
async fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    let Some((host, port)) = split_host_port(address) else {
        return Err(format!("dial tcp: address {address}: missing port in address"));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("dial tcp: address {address}: invalid port"));
    }
    match tokio::net::lookup_host(address).await {
        Ok(addrs) => Ok(addrs.collect()),
        Err(_) => Err(format!("dial tcp: lookup {host}: no such host")),
    }
}

/// Splits `host:port` and `[v6]:port`; `None` without a port.
fn split_host_port(address: &str) -> Option<(&str, &str)> {
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = address.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn connect_success() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (status, output) = probe_tcp(&address, Duration::from_secs(2)).await;
        assert_eq!(status, CheckStatus::Passing);
        assert_eq!(output, format!("TCP connect {address}: Success"));
    }

    #[tokio::test]
    async fn connect_refused_reads_like_go() {
        // Bind then drop, so nothing listens on the port.
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let (status, output) = probe_tcp(&address, Duration::from_secs(2)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, format!("dial tcp {address}: connect: connection refused"));
    }

    #[tokio::test]
    async fn bad_addresses_are_critical_with_go_text() {
        let (status, output) = probe_tcp("127.0.0.1", Duration::from_secs(1)).await;
        assert_eq!(status, CheckStatus::Critical);
        assert_eq!(output, "dial tcp: address 127.0.0.1: missing port in address");
        let (_, output) = probe_tcp("127.0.0.1:http99", Duration::from_secs(1)).await;
        assert_eq!(output, "dial tcp: address 127.0.0.1:http99: invalid port");
        let (_, output) = probe_tcp("::1", Duration::from_secs(1)).await;
        assert_eq!(output, "dial tcp: address ::1: missing port in address");
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("[::1]"), None);
        assert_eq!(split_host_port("a"), None);
    }

    #[test]
    fn timeout_text() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let error = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(dial_error_output(addr, &error), "dial tcp 127.0.0.1:9: i/o timeout");
    }
}
