//! Parsing `-join`/`-retry-join` targets: `ip`, `ip:port`, `[v6]:port`,
//! `host`, `host:port` (default port 8301).

/// Longest join target accepted.
pub const JOIN_TARGET_BYTES_MAX: usize = 255;

/// A join target ready for name resolution: `host:port` text.
pub fn parse_join_target(target: &str, default_port: u16) -> Result<String, String> {
    let target = target.trim();
    if target.is_empty() || target.len() > JOIN_TARGET_BYTES_MAX {
        return Err(format!("invalid join address '{target}'"));
    }
    if target.contains("provider=") {
        return Err(format!("cloud auto-join is not supported: '{target}'"));
    }
    if let Ok(ip) = target.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, default_port).to_string());
    }
    if target.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(target.to_string());
    }
    if let Some(v6) = target.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| format!("invalid join address '{target}'"))?;
        return Ok(std::net::SocketAddr::new(ip.into(), default_port).to_string());
    }
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("invalid port in join address '{target}'"))?;
            (host, port)
        }
        None => (target, default_port),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if !host_ok {
        return Err(format!("invalid join address '{target}'"));
    }
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_consul_forms() {
        assert_eq!(parse_join_target("10.0.0.1", 8301).unwrap(), "10.0.0.1:8301");
        assert_eq!(parse_join_target("10.0.0.1:9301", 8301).unwrap(), "10.0.0.1:9301");
        assert_eq!(parse_join_target("[::1]:8301", 1).unwrap(), "[::1]:8301");
        assert_eq!(parse_join_target("[::1]", 8301).unwrap(), "[::1]:8301");
        assert_eq!(parse_join_target("::1", 8301).unwrap(), "[::1]:8301");
        assert_eq!(
            parse_join_target("consul-server-1", 8301).unwrap(),
            "consul-server-1:8301"
        );
        assert_eq!(parse_join_target(" s2:7000 ", 8301).unwrap(), "s2:7000");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_join_target("", 8301).is_err());
        assert!(parse_join_target("host:notaport", 8301).is_err());
        assert!(parse_join_target("a b", 8301).is_err());
        assert!(parse_join_target("provider=aws tag_key=x", 8301)
            .unwrap_err()
            .contains("auto-join"));
        assert!(parse_join_target(&"x".repeat(300), 8301).is_err());
    }
}
