//! The `prepare-catalog` sub-command: registers `--services` services,
//! `svc<i>` on node `node<i>`, through `PUT /v1/catalog/register`. Names,
//! addresses and ports are those of the peer kit's zone (`gen_zone.py`:
//! `svc<i>.service` A `10.<i>>16>.<i>>8>.<i>`, SRV port `20000 + i % 40000`),
//! so one query file loads Proconsul and the peer DNS servers alike.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context;

use crate::cli::PrepareCatalogArgs;
use crate::http::bulk_write::write_all;

/// Address of node number `i`.
pub fn node_address(i: u64) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

/// Port of service number `i`.
pub fn service_port(i: u64) -> u16 {
    20_000 + (i % 40_000) as u16
}

/// The JSON body registering service `svc<i>` on node `node<i>`.
pub fn register_body(i: u64) -> String {
    serde_json::json!({
        "Node": format!("node{i}"),
        "Address": node_address(i).to_string(),
        "Service": {
            "ID": format!("svc{i}"),
            "Service": format!("svc{i}"),
            "Port": service_port(i),
        },
    })
    .to_string()
}

/// The bytes of the `PUT /v1/catalog/register` for service number `i`.
pub fn register_request(host: &str, i: u64) -> Vec<u8> {
    let body = register_body(i);
    format!(
        "PUT /v1/catalog/register HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\n\
Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Runs the `prepare-catalog` sub-command.
pub fn run(args: PrepareCatalogArgs) -> anyhow::Result<()> {
    args.validate()?;
    let host = args.target.to_string();
    let outcome = write_all(
        args.target,
        args.connections,
        Duration::from_millis(args.timeout_ms),
        args.services,
        |i| (format!("service svc{i}"), register_request(&host, i)),
    )
    .context("prepare-catalog")?;
    println!(
        "{}",
        serde_json::json!({
            "mode": "prepare-catalog",
            "target": host,
            "services": outcome.written,
            "elapsed_s": outcome.elapsed_s,
            "writes_per_s": outcome.written as f64 / outcome.elapsed_s.max(1e-9),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_ports_follow_the_peer_zone() {
        assert_eq!(node_address(0), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(node_address(70_000), Ipv4Addr::new(10, 1, 17, 112));
        assert_eq!(service_port(0), 20_000);
        assert_eq!(service_port(40_001), 20_001);
        let v: serde_json::Value = serde_json::from_str(&register_body(258)).unwrap();
        assert_eq!(v["Node"], "node258");
        assert_eq!(v["Address"], "10.0.1.2");
        assert_eq!(v["Service"]["Service"], "svc258");
        assert_eq!(v["Service"]["Port"], 20_258);
    }

    #[test]
    fn request_carries_the_body() {
        let req = register_request("h", 1);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut parsed = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(head) = parsed.parse(&req).unwrap() else {
            panic!("partial")
        };
        assert_eq!(parsed.path, Some("/v1/catalog/register"));
        assert_eq!(&req[head..], register_body(1).as_bytes());
    }
}
