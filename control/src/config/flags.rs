//! The `agent` command's flags and how they become a configuration source.
//! Pure: turns parsed arguments into a [`PartialConfig`] plus the list of
//! config files and directories to read, in command-line order.

use std::path::PathBuf;

use crate::cli::flags::{FlagError, FlagSpec, ParsedArgs};

use super::error::ConfigError;
use super::partial::PartialConfig;

/// Every flag `proconsul agent` accepts.
pub const AGENT_FLAGS: &[FlagSpec] = &[
    FlagSpec::value("advertise", "Address other nodes and the catalog use for this node."),
    FlagSpec::value("alt-domain", "Alternate DNS domain answered like -domain."),
    FlagSpec::value("bind", "Cluster (server RPC) address. Defaults to 127.0.0.1."),
    FlagSpec::boolean("bootstrap", "Bootstrap a single server (self-elect)."),
    FlagSpec::value(
        "bootstrap-expect",
        "Number of servers to wait for before bootstrapping.",
    ),
    FlagSpec::value(
        "client",
        "HTTP and DNS listen address(es), space-separated. Defaults to 127.0.0.1.",
    ),
    FlagSpec::list(
        "config-dir",
        "Directory of *.json config files (lexical order). Repeatable.",
    ),
    FlagSpec::list(
        "config-file",
        "A JSON config file. Repeatable; later files override earlier ones.",
    ),
    FlagSpec::value("data-dir", "Directory for persistent state. Required unless -dev."),
    FlagSpec::value("datacenter", "Datacenter name. Defaults to dc1."),
    FlagSpec::value(
        "dataplane-threads",
        "Proconsul: data-plane serving threads, 0 = one per core (the default).",
    ),
    FlagSpec::value(
        "default-query-time",
        "Default blocking-query wait (Go duration). Defaults to 300s.",
    ),
    FlagSpec::boolean("dev", "Development mode: in-memory single-node server."),
    // Hidden (empty usage): SIGUSR1 isolates the agent, SIGUSR2 heals it.
    FlagSpec::boolean("dev-fault-injection", ""),
    FlagSpec::value("dns-port", "DNS port (UDP and TCP), -1 to disable. Defaults to 8600."),
    FlagSpec::value("domain", "DNS domain. Defaults to consul."),
    FlagSpec::boolean("enable-script-checks", "Allow script checks."),
    FlagSpec::value("http-port", "HTTP API port, -1 to disable. Defaults to 8500."),
    FlagSpec::list("join", "Alias of -retry-join (since Consul 1.15)."),
    FlagSpec::list("join-wan", "Alias of -retry-join-wan (since Consul 1.15)."),
    FlagSpec::value("log-level", "trace, debug, info, warn or err. Defaults to info."),
    FlagSpec::value(
        "max-query-time",
        "Longest blocking-query wait (Go duration). Defaults to 600s.",
    ),
    FlagSpec::value("node", "Node name. Defaults to the hostname."),
    FlagSpec::value(
        "node-id",
        "Node ID (UUID). Defaults to a random one kept in <data-dir>/node-id.",
    ),
    FlagSpec::list("node-meta", "key:value metadata for this node. Repeatable."),
    FlagSpec::value("pid-file", "Write the agent's PID to this file."),
    FlagSpec::list(
        "recursor",
        "Upstream DNS server (ip or ip:port) for names outside the domain. Repeatable.",
    ),
    FlagSpec::value(
        "retry-interval",
        "Pause between join attempts (Go duration). Defaults to 30s.",
    ),
    FlagSpec::value(
        "retry-interval-wan",
        "Pause between WAN join attempts (Go duration). Defaults to 30s.",
    ),
    FlagSpec::list(
        "retry-join",
        "Address of an agent to join (gossip, port 8301 unless given). Repeatable; retried until it works.",
    ),
    FlagSpec::list(
        "retry-join-wan",
        "Address of a server in another datacenter to join in the WAN pool (port 8302 unless given). Repeatable.",
    ),
    FlagSpec::value(
        "serf-lan-port",
        "Serf LAN (gossip) port, -1 to disable. Defaults to 8301.",
    ),
    FlagSpec::value(
        "serf-wan-port",
        "Serf WAN (gossip) port, -1 to disable. Defaults to 8302.",
    ),
    FlagSpec::boolean("server", "Run as a server (raft voter)."),
    FlagSpec::value("server-port", "Server RPC (raft) port. Defaults to 8300."),
    FlagSpec::boolean("ui", "Accepted for compatibility; there is no web UI."),
];

/// A config file or directory named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPath {
    File(PathBuf),
    Dir(PathBuf),
}

/// What the command line contributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentArgs {
    /// Settings given as flags (they override every file).
    pub flags: PartialConfig,
    /// Files and directories to read, in the order given.
    pub config_paths: Vec<ConfigPath>,
    pub warnings: Vec<String>,
}

fn flag_error(e: FlagError) -> ConfigError {
    ConfigError::Invalid(e.to_string())
}

/// Turns the agent's parsed flags into a configuration source.
pub fn agent_args(args: &ParsedArgs) -> Result<AgentArgs, ConfigError> {
    if let Some(extra) = args.positionals.first() {
        return Err(ConfigError::Invalid(format!("unexpected argument: {extra}")));
    }
    let string = |name: &str| args.value(name).map(str::to_string);
    let mut flags = PartialConfig {
        dev: args.bool_opt("dev"),
        server: args.bool_opt("server"),
        bootstrap: args.bool_opt("bootstrap"),
        bootstrap_expect: args.parsed::<i64>("bootstrap-expect").map_err(flag_error)?,
        data_dir: string("data-dir"),
        node_name: string("node"),
        node_id: string("node-id"),
        datacenter: string("datacenter"),
        bind_addr: string("bind"),
        advertise_addr: string("advertise"),
        client_addr: string("client"),
        log_level: string("log-level"),
        pid_file: string("pid-file"),
        enable_script_checks: args.bool_opt("enable-script-checks"),
        domain: string("domain"),
        default_query_time: string("default-query-time"),
        max_query_time: string("max-query-time"),
        dataplane_threads: args.parsed::<i64>("dataplane-threads").map_err(flag_error)?,
        ..Default::default()
    };
    flags.dns.alt_domain = string("alt-domain");
    let recursors = args.values("recursor");
    if !recursors.is_empty() {
        flags.dns.recursors = Some(recursors.iter().map(|r| r.to_string()).collect());
    }
    flags.ports.http = args.parsed::<i64>("http-port").map_err(flag_error)?;
    flags.ports.dns = args.parsed::<i64>("dns-port").map_err(flag_error)?;
    flags.ports.server = args.parsed::<i64>("server-port").map_err(flag_error)?;
    flags.ports.serf_lan = args.parsed::<i64>("serf-lan-port").map_err(flag_error)?;
    flags.ports.serf_wan = args.parsed::<i64>("serf-wan-port").map_err(flag_error)?;
    for pair in args.values("node-meta") {
        let Some((k, v)) = pair.split_once(':') else {
            return Err(ConfigError::Invalid(format!(
                "-node-meta: {pair:?} is not in key:value form"
            )));
        };
        flags.node_meta.insert(k.to_string(), v.to_string());
    }
    let config_paths = args
        .in_order(&["config-file", "config-dir"])
        .into_iter()
        .map(|(name, path)| match name {
            "config-file" => ConfigPath::File(PathBuf::from(path)),
            _ => ConfigPath::Dir(PathBuf::from(path)),
        })
        .collect();
    let mut warnings = Vec::new();
    if args.is_set("ui") {
        warnings.push("-ui is accepted for compatibility; there is no web UI".to_string());
    }
    for (_, addr) in args.in_order(&["join", "retry-join"]) {
        flags.cluster.retry_join.push(addr.to_string());
    }
    flags.cluster.retry_interval = string("retry-interval");
    for (_, addr) in args.in_order(&["join-wan", "retry-join-wan"]) {
        flags.cluster.retry_join_wan.push(addr.to_string());
    }
    flags.cluster.retry_interval_wan = string("retry-interval-wan");
    flags.cluster.dev_fault_injection = args.bool_opt("dev-fault-injection");
    Ok(AgentArgs {
        flags,
        config_paths,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::flags::parse;

    fn agent(list: &[&str]) -> Result<AgentArgs, ConfigError> {
        let args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        agent_args(&parse(AGENT_FLAGS, &args).unwrap())
    }

    #[test]
    fn flags_fill_the_partial_config() {
        let a = agent(&[
            "-dev",
            "-data-dir=/x",
            "-node",
            "n1",
            "-http-port",
            "18500",
            "-dns-port=-1",
            "-client",
            "127.0.0.1 127.0.0.2",
            "-node-meta=rack:r1",
            "-node-meta",
            "zone:z:1",
        ])
        .unwrap();
        let f = a.flags;
        assert_eq!(f.dev, Some(true));
        assert_eq!(f.server, None, "server stays unset so -dev's default applies");
        assert_eq!(f.data_dir.as_deref(), Some("/x"));
        assert_eq!(f.node_name.as_deref(), Some("n1"));
        assert_eq!(f.ports.http, Some(18500));
        assert_eq!(f.ports.dns, Some(-1));
        assert_eq!(f.client_addr.as_deref(), Some("127.0.0.1 127.0.0.2"));
        assert_eq!(f.node_meta.get("zone").map(String::as_str), Some("z:1"));
        assert_eq!(f.node_meta.get("rack").map(String::as_str), Some("r1"));
    }

    #[test]
    fn dns_flags_fill_the_partial_config() {
        let f = agent(&[
            "-recursor=10.0.0.53",
            "-recursor",
            "127.0.0.2:5353",
            "-alt-domain",
            "alt.",
        ])
        .unwrap()
        .flags;
        assert_eq!(
            f.dns.recursors,
            Some(vec!["10.0.0.53".to_string(), "127.0.0.2:5353".to_string()])
        );
        assert_eq!(f.dns.alt_domain.as_deref(), Some("alt."));
        assert_eq!(agent(&["-dev"]).unwrap().flags.dns.recursors, None);
    }

    #[test]
    fn config_paths_keep_command_line_order() {
        let a = agent(&["-config-dir=/d1", "-config-file", "/a.json", "-config-dir", "/d2"]).unwrap();
        assert_eq!(
            a.config_paths,
            vec![
                ConfigPath::Dir("/d1".into()),
                ConfigPath::File("/a.json".into()),
                ConfigPath::Dir("/d2".into()),
            ]
        );
    }

    #[test]
    fn bad_values_and_extra_arguments() {
        let e = agent(&["-http-port=http"]).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid value \"http\" for flag -http-port"),
            "{e}"
        );
        let e = agent(&["-node-meta=novalue"]).unwrap_err();
        assert_eq!(e.to_string(), "-node-meta: \"novalue\" is not in key:value form");
        let e = agent(&["-dev", "extra"]).unwrap_err();
        assert_eq!(e.to_string(), "unexpected argument: extra");
    }

    #[test]
    fn wan_and_fault_injection_flags() {
        let a = agent(&[
            "-retry-join-wan=s5",
            "-join-wan",
            "s6",
            "-retry-interval-wan=1s",
            "-serf-wan-port=18302",
            "-serf-lan-port=-1",
            "-dev-fault-injection",
        ])
        .unwrap();
        assert_eq!(a.flags.cluster.retry_join_wan, vec!["s5", "s6"]);
        assert_eq!(a.flags.cluster.retry_interval_wan.as_deref(), Some("1s"));
        assert_eq!(a.flags.ports.serf_wan, Some(18302));
        assert_eq!(a.flags.ports.serf_lan, Some(-1));
        assert_eq!(a.flags.cluster.dev_fault_injection, Some(true));
        assert_eq!(agent(&[]).unwrap().flags.cluster.dev_fault_injection, None);
    }

    #[test]
    fn the_fault_injection_flag_is_hidden_from_help() {
        let help = crate::cli::flags::usage(AGENT_FLAGS);
        assert!(help.contains("-retry-join-wan"));
        assert!(!help.contains("-dev-fault-injection"), "{help}");
    }

    #[test]
    fn join_flags_collect_in_order_and_ui_warns() {
        let a = agent(&["-ui", "-retry-join=s2", "-join", "s3", "-retry-interval=200ms"]).unwrap();
        assert_eq!(a.warnings.len(), 1);
        assert_eq!(a.flags.cluster.retry_join, vec!["s2", "s3"]);
        assert_eq!(a.flags.cluster.retry_interval.as_deref(), Some("200ms"));
    }
}
