//! The start-up banner on stdout, in Consul's shape (scripts grep it). Pure.

use super::build_info::{BUILD_DATE, CONSUL_COMPAT_VERSION, PROCONSUL_VERSION};
use crate::config::Config;

/// Width the keys are right-aligned to.
const KEY_WIDTH: usize = 22;

fn line(out: &mut String, key: &str, value: &str) {
    out.push_str(&format!("{key:>KEY_WIDTH$}: {value}\n"));
}

/// The banner text, ending with the "log data" line.
pub fn banner(config: &Config, node_id: &str) -> String {
    let mut out = String::from("==> Starting Consul agent...\n");
    let p = &config.ports;
    let client_addrs: Vec<String> = config.client_addrs.iter().map(|a| a.to_string()).collect();
    let segment = if config.server { "<all>" } else { "" };
    line(&mut out, "Version", &format!("'{CONSUL_COMPAT_VERSION}'"));
    line(&mut out, "Proconsul", &format!("'v{PROCONSUL_VERSION}'"));
    line(&mut out, "Build Date", &format!("'{BUILD_DATE}'"));
    line(&mut out, "Node ID", &format!("'{node_id}'"));
    line(&mut out, "Node name", &format!("'{}'", config.node_name));
    line(
        &mut out,
        "Datacenter",
        &format!("'{}' (Segment: '{segment}')", config.datacenter),
    );
    line(
        &mut out,
        "Server",
        &format!("{} (Bootstrap: {})", config.server, config.bootstrap),
    );
    line(
        &mut out,
        "Client Addr",
        &format!(
            "[{}] (HTTP: {}, HTTPS: {}, gRPC: {}, gRPC-TLS: {}, DNS: {})",
            client_addrs.join(" "),
            p.http,
            p.https,
            p.grpc,
            p.grpc_tls,
            p.dns
        ),
    );
    line(
        &mut out,
        "Cluster Addr",
        &format!("{} (LAN: {}, WAN: {})", config.advertise_addr, p.serf_lan, p.serf_wan),
    );
    line(&mut out, "Gossip Encryption", "false");
    line(&mut out, "Auto-Encrypt-TLS", "false");
    line(&mut out, "ACL Enabled", "false");
    line(&mut out, "Reporting Enabled", "false");
    line(&mut out, "ACL Default Policy", "allow");
    out.push_str("\n==> Log data will now stream in as it occurs:\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, HostFacts, PartialConfig};

    #[test]
    fn consul_shaped_banner() {
        let mut p = PartialConfig {
            dev: Some(true),
            node_name: Some("n1".into()),
            client_addr: Some("127.0.0.1 127.0.0.2".into()),
            ..Default::default()
        };
        p.ports.http = Some(18500);
        let c = resolve(p, &HostFacts::default(), vec![]).unwrap();
        let text = banner(&c, "id-1");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "==> Starting Consul agent...");
        assert_eq!(*lines.last().unwrap(), "==> Log data will now stream in as it occurs:");
        assert!(text.contains("             Node name: 'n1'\n"), "{text}");
        assert!(text.contains("Datacenter: 'dc1' (Segment: '<all>')"));
        assert!(text.contains("Server: true (Bootstrap: true)"));
        assert!(text.contains(
            "Client Addr: [127.0.0.1 127.0.0.2] (HTTP: 18500, HTTPS: -1, gRPC: -1, gRPC-TLS: -1, DNS: 8600)"
        ));
        assert!(text.contains(&format!("Version: '{CONSUL_COMPAT_VERSION}'")));
        let colons: Vec<usize> = lines[1..lines.len() - 2]
            .iter()
            .map(|l| l.find(": ").unwrap())
            .collect();
        assert!(colons.iter().all(|c| *c == KEY_WIDTH), "keys are aligned");
    }
}
