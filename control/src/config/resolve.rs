//! From merged sources to a [`Config`]: defaults, `-dev` defaults, and every
//! validation rule. Pure: facts about the host come in as [`HostFacts`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use proconsul_dataplane::blocking::wake_pacing::{WAKE_HOLD_MS_MAX_DEFAULT, WAKE_HOLD_MS_MAX_LIMIT};
use proconsul_shared::agent_info::Ports;

use super::duration::parse_duration_ms;
use super::error::ConfigError;
use super::partial::{PartialConfig, PartialPorts};
use super::runtime::{Config, LogLevel};

/// Most data-plane serving threads one agent may ask for.
pub const DATAPLANE_THREADS_MAX: usize = 1024;
/// Consul's default `limits.http_max_conns_per_client`.
pub const HTTP_MAX_CONNS_PER_CLIENT_DEFAULT: u32 = 200;
/// Consul's default `default_query_time` (5 minutes).
pub const DEFAULT_QUERY_TIME_MS_DEFAULT: u64 = 300_000;
/// Consul's default `max_query_time` (10 minutes).
pub const MAX_QUERY_TIME_MS_DEFAULT: u64 = 600_000;
/// Most `node_meta` pairs (Consul's limit).
pub const NODE_META_PAIRS_MAX: usize = 64;
/// Longest `node_meta` key, in characters.
pub const NODE_META_KEY_CHARS_MAX: usize = 128;
/// Longest `node_meta` value, in characters.
pub const NODE_META_VALUE_CHARS_MAX: usize = 512;
/// Most `-client` addresses.
pub const CLIENT_ADDRS_MAX: usize = 16;

/// What the resolver needs to know about the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub hostname: String,
    /// Private IPv4 addresses on the host's interfaces (for `-bind 0.0.0.0`).
    pub private_ipv4: Vec<Ipv4Addr>,
}

fn invalid(text: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(text.into())
}

fn port(name: &str, given: Option<i64>, default: i32) -> Result<i32, ConfigError> {
    match given {
        None => Ok(default),
        Some(-1) => Ok(-1),
        Some(p) if (1..=65535).contains(&p) => Ok(p as i32),
        Some(p) => Err(invalid(format!(
            "ports.{name}: invalid port {p} (want 1-65535, or -1 to disable)"
        ))),
    }
}

fn ports(given: &PartialPorts) -> Result<Ports, ConfigError> {
    let d = Ports::default();
    let ports = Ports {
        http: port("http", given.http, d.http)?,
        https: port("https", given.https, d.https)?,
        dns: port("dns", given.dns, d.dns)?,
        grpc: port("grpc", given.grpc, d.grpc)?,
        grpc_tls: port("grpc_tls", given.grpc_tls, d.grpc_tls)?,
        server: port("server", given.server, d.server)?,
        serf_lan: port("serf_lan", given.serf_lan, d.serf_lan)?,
        serf_wan: port("serf_wan", given.serf_wan, d.serf_wan)?,
    };
    if ports.http != -1 && ports.http == ports.dns {
        return Err(invalid(format!(
            "ports.http and ports.dns are both {}: the HTTP and DNS (TCP) listeners need different ports",
            ports.http
        )));
    }
    Ok(ports)
}

fn ip(name: &str, text: &str) -> Result<IpAddr, ConfigError> {
    text.trim()
        .parse::<IpAddr>()
        .map_err(|_| invalid(format!("{name}: \"{text}\" is not an IP address")))
}

fn client_addrs(given: Option<&str>) -> Result<Vec<IpAddr>, ConfigError> {
    let text = given.unwrap_or("127.0.0.1");
    let mut addrs = Vec::new();
    for part in text.split_whitespace() {
        let a = ip("client_addr", part)?;
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(invalid("client_addr cannot be empty"));
    }
    if addrs.len() > CLIENT_ADDRS_MAX {
        return Err(invalid(format!(
            "client_addr: {} addresses given, at most {CLIENT_ADDRS_MAX} are supported",
            addrs.len()
        )));
    }
    Ok(addrs)
}

fn advertise_addr(
    given: Option<&str>,
    bind: IpAddr,
    host: &HostFacts,
    warnings: &mut Vec<String>,
) -> Result<IpAddr, ConfigError> {
    if let Some(text) = given {
        let a = ip("advertise_addr", text)?;
        if a.is_unspecified() {
            return Err(invalid("Advertise address cannot be 0.0.0.0, :: or [::]"));
        }
        return Ok(a);
    }
    if !bind.is_unspecified() {
        return Ok(bind);
    }
    match host.private_ipv4.as_slice() {
        [one] => Ok(IpAddr::V4(*one)),
        [] => {
            warnings.push("bind_addr is 0.0.0.0 and no private IPv4 address was found: advertising 127.0.0.1".into());
            Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        _ => Err(invalid(
            "Multiple private IPv4 addresses found. Please configure one with 'bind' and/or 'advertise'.",
        )),
    }
}

fn datacenter(given: Option<&str>) -> Result<String, ConfigError> {
    let dc = given.unwrap_or("dc1").to_ascii_lowercase();
    if dc.is_empty() {
        return Err(invalid("datacenter cannot be empty"));
    }
    if !dc
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "datacenter can only contain lowercase alphanumeric, - or _ characters.",
        ));
    }
    Ok(dc)
}

fn domain(given: Option<&str>) -> Result<String, ConfigError> {
    let text = given.unwrap_or("consul.").to_ascii_lowercase();
    let bare = text.strip_suffix('.').unwrap_or(&text);
    let valid = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(invalid(format!("domain \"{text}\" is not a valid DNS name")));
    }
    Ok(format!("{bare}."))
}

fn node_name(given: Option<&str>, host: &HostFacts, warnings: &mut Vec<String>) -> Result<String, ConfigError> {
    let name = given.unwrap_or(&host.hostname).to_string();
    if name.is_empty() {
        return Err(invalid("node_name cannot be empty"));
    }
    if name.len() > 63 {
        warnings.push(format!(
            "Node name \"{name}\" will not be discoverable via DNS due to it being too long. Valid lengths are between 1 and 63 bytes."
        ));
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        warnings.push(format!(
            "Node name \"{name}\" will not be discoverable via DNS due to invalid characters. Valid characters include all alpha-numerics and dashes."
        ));
    }
    Ok(name)
}

fn node_id(given: Option<&str>) -> Result<Option<String>, ConfigError> {
    match given {
        None => Ok(None),
        Some(text) => uuid::Uuid::parse_str(text.trim())
            .map(|u| Some(u.hyphenated().to_string()))
            .map_err(|_| invalid(format!("node_id \"{text}\" is not a valid UUID"))),
    }
}

fn node_meta(meta: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let bad = |why: String| invalid(format!("invalid node_meta: {why}"));
    if meta.len() > NODE_META_PAIRS_MAX {
        return Err(bad(format!(
            "Node metadata cannot contain more than {NODE_META_PAIRS_MAX} key/value pairs"
        )));
    }
    for (k, v) in meta {
        if k.is_empty() {
            return Err(bad("Key cannot be blank".into()));
        }
        if k.chars().count() > NODE_META_KEY_CHARS_MAX {
            return Err(bad(format!(
                "Key is too long (limit: {NODE_META_KEY_CHARS_MAX} characters)"
            )));
        }
        if !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(bad(format!("Key contains invalid characters: {k:?}")));
        }
        if k.starts_with("consul-") {
            return Err(bad(format!("Key prefix 'consul-' is reserved for internal use: {k:?}")));
        }
        if v.chars().count() > NODE_META_VALUE_CHARS_MAX {
            return Err(bad(format!(
                "Value is too long (limit: {NODE_META_VALUE_CHARS_MAX} characters)"
            )));
        }
    }
    Ok(())
}

fn query_time(name: &str, given: Option<&str>, default_ms: u64) -> Result<u64, ConfigError> {
    let Some(text) = given else {
        return Ok(default_ms);
    };
    let ms = parse_duration_ms(text).map_err(|e| invalid(format!("{name}: {e}")))?;
    if ms == 0 {
        return Err(invalid(format!("{name} must be greater than zero")));
    }
    Ok(ms)
}

/// Default `check_update_interval` (Consul: 5 min).
pub const CHECK_UPDATE_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Default period of the full anti-entropy sync (Consul: 1 min and up).
pub const ANTI_ENTROPY_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Default period of the critical-service reaper (Consul: 30 s).
pub const CHECK_REAP_INTERVAL_MS_DEFAULT: u64 = 30_000;

/// Applies defaults and validates the merged sources.
pub fn resolve(merged: PartialConfig, host: &HostFacts, mut warnings: Vec<String>) -> Result<Config, ConfigError> {
    let dev = merged.dev.unwrap_or(false);
    let server = merged.server.unwrap_or(dev);
    let bootstrap = merged.bootstrap.unwrap_or(dev);
    let bootstrap_expect = match merged.bootstrap_expect {
        None => 0,
        Some(n) => u32::try_from(n).map_err(|_| invalid(format!("bootstrap_expect: invalid value {n}")))?,
    };
    if bootstrap && !server {
        return Err(invalid("'bootstrap = true' requires 'server = true'"));
    }
    if bootstrap_expect > 0 && !server {
        return Err(invalid("'bootstrap_expect > 0' requires 'server = true'"));
    }
    if bootstrap && bootstrap_expect > 0 {
        return Err(invalid(
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        ));
    }
    if bootstrap_expect > 2 && bootstrap_expect % 2 == 0 {
        warnings.push(format!(
            "bootstrap_expect = {bootstrap_expect}: an even number of servers tolerates no more failures than {}",
            bootstrap_expect - 1
        ));
    }
    let data_dir = merged.data_dir.filter(|d| !d.is_empty()).map(PathBuf::from);
    if data_dir.is_none() && !dev {
        return Err(invalid("data_dir cannot be empty"));
    }
    let log_level = match merged.log_level.as_deref() {
        None => {
            if dev {
                LogLevel::Debug
            } else {
                LogLevel::Info
            }
        }
        Some(text) => LogLevel::parse(text).ok_or_else(|| {
            invalid(format!(
                "Invalid log level: {text}. Valid log levels are: [TRACE DEBUG INFO WARN ERR]"
            ))
        })?,
    };
    let bind_addr = match merged.bind_addr.as_deref() {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(text) => ip("bind_addr", text)?,
    };
    let advertise_addr = advertise_addr(merged.advertise_addr.as_deref(), bind_addr, host, &mut warnings)?;
    node_meta(&merged.node_meta)?;
    let default_query_time_ms = query_time(
        "default_query_time",
        merged.default_query_time.as_deref(),
        DEFAULT_QUERY_TIME_MS_DEFAULT,
    )?;
    let max_query_time_ms = query_time(
        "max_query_time",
        merged.max_query_time.as_deref(),
        MAX_QUERY_TIME_MS_DEFAULT,
    )?;
    let http_max_conns_per_client = match merged.http_max_conns_per_client {
        None => HTTP_MAX_CONNS_PER_CLIENT_DEFAULT,
        Some(n) => {
            u32::try_from(n).map_err(|_| invalid(format!("limits.http_max_conns_per_client: invalid value {n}")))?
        }
    };
    let wake_hold_ms_max = match merged.wake_hold_ms_max {
        None => WAKE_HOLD_MS_MAX_DEFAULT,
        Some(n) if (0..=WAKE_HOLD_MS_MAX_LIMIT as i64).contains(&n) => n as u64,
        Some(n) => {
            return Err(invalid(format!(
                "limits.wake_hold_ms_max: invalid value {n} (0 to {WAKE_HOLD_MS_MAX_LIMIT}; 0 = off)"
            )))
        }
    };
    let dataplane_threads = match merged.dataplane_threads {
        None => 0,
        Some(n) if (0..=DATAPLANE_THREADS_MAX as i64).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(format!(
                "dataplane_threads: invalid value {n} (0 to {DATAPLANE_THREADS_MAX}; 0 = one per core)"
            )))
        }
    };
    Ok(Config {
        dev,
        server,
        bootstrap,
        bootstrap_expect,
        data_dir,
        node_name: node_name(merged.node_name.as_deref(), host, &mut warnings)?,
        node_id: node_id(merged.node_id.as_deref())?,
        datacenter: datacenter(merged.datacenter.as_deref())?,
        bind_addr,
        advertise_addr,
        client_addrs: client_addrs(merged.client_addr.as_deref())?,
        ports: ports(&merged.ports)?,
        log_level,
        pid_file: merged.pid_file.filter(|p| !p.is_empty()).map(PathBuf::from),
        enable_script_checks: merged.enable_script_checks.unwrap_or(false),
        enable_local_script_checks: merged.enable_local_script_checks.unwrap_or(false),
        check_update_interval_ms: query_time(
            "check_update_interval",
            merged.check_update_interval.as_deref(),
            CHECK_UPDATE_INTERVAL_MS_DEFAULT,
        )?,
        anti_entropy_interval_ms: query_time(
            "anti_entropy_interval",
            merged.anti_entropy_interval.as_deref(),
            ANTI_ENTROPY_INTERVAL_MS_DEFAULT,
        )?,
        check_reap_interval_ms: query_time(
            "check_reap_interval",
            merged.check_reap_interval.as_deref(),
            CHECK_REAP_INTERVAL_MS_DEFAULT,
        )?,
        service_definitions: merged.service_definitions,
        check_definitions: merged.check_definitions,
        config_paths: Vec::new(),
        domain: domain(merged.domain.as_deref())?,
        dns: super::dns::resolve_dns(&merged.dns, &domain(merged.domain.as_deref())?)?,
        cluster: super::cluster::resolve(&merged.cluster)?,
        node_meta: merged.node_meta,
        default_query_time_ms,
        max_query_time_ms,
        http_max_conns_per_client,
        wake_hold_ms_max,
        dataplane_threads,
        pretty_json: dev,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            hostname: "box1".into(),
            private_ipv4: vec![],
        }
    }

    fn with(f: impl FnOnce(&mut PartialConfig)) -> Result<Config, ConfigError> {
        let mut p = PartialConfig {
            data_dir: Some("/var/lib/proconsul".into()),
            ..Default::default()
        };
        f(&mut p);
        resolve(p, &host(), Vec::new())
    }

    fn err(f: impl FnOnce(&mut PartialConfig)) -> String {
        with(f).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = with(|_| {}).unwrap();
        assert!(!c.dev && !c.server && !c.bootstrap);
        assert_eq!(c.node_name, "box1");
        assert_eq!(c.datacenter, "dc1");
        assert_eq!(c.domain, "consul.");
        assert_eq!(c.client_addrs, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(c.bind_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.advertise_addr, c.bind_addr);
        assert_eq!((c.ports.http, c.ports.dns, c.ports.server), (8500, 8600, 8300));
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.http_max_conns_per_client, 200);
        assert_eq!(c.default_query_time_ms, 300_000);
        assert_eq!(c.max_query_time_ms, 600_000);
        assert!(!c.pretty_json);
        assert_eq!(c.server_rpc_addr(), "127.0.0.1:8300");
    }

    #[test]
    fn dev_defaults_and_explicit_overrides() {
        let c = resolve(
            PartialConfig {
                dev: Some(true),
                ..Default::default()
            },
            &host(),
            Vec::new(),
        )
        .unwrap();
        assert!(c.dev && c.server && c.bootstrap && c.pretty_json);
        assert_eq!(c.data_dir, None);
        assert_eq!(c.log_level, LogLevel::Debug);
        let c = with(|p| {
            p.dev = Some(true);
            p.log_level = Some("warn".into());
        })
        .unwrap();
        assert_eq!(c.log_level, LogLevel::Warn);
    }

    #[test]
    fn data_dir_is_required_without_dev() {
        assert_eq!(err(|p| p.data_dir = None), "data_dir cannot be empty");
        assert_eq!(err(|p| p.data_dir = Some(String::new())), "data_dir cannot be empty");
    }

    #[test]
    fn datacenter_is_lowercased_and_validated() {
        assert_eq!(
            with(|p| p.datacenter = Some("EU-West_1".into())).unwrap().datacenter,
            "eu-west_1"
        );
        assert_eq!(
            err(|p| p.datacenter = Some("dc 1".into())),
            "datacenter can only contain lowercase alphanumeric, - or _ characters."
        );
        assert_eq!(
            err(|p| p.datacenter = Some(String::new())),
            "datacenter cannot be empty"
        );
    }

    #[test]
    fn bad_ports() {
        assert_eq!(
            err(|p| p.ports.http = Some(70000)),
            "ports.http: invalid port 70000 (want 1-65535, or -1 to disable)"
        );
        assert!(err(|p| p.ports.dns = Some(0)).starts_with("ports.dns: invalid port 0"));
        assert!(err(|p| p.ports.server = Some(-2)).starts_with("ports.server: invalid port -2"));
        let c = with(|p| p.ports.http = Some(-1)).unwrap();
        assert_eq!(c.ports.http, -1);
        assert!(err(|p| {
            p.ports.http = Some(9000);
            p.ports.dns = Some(9000);
        })
        .contains("both 9000"));
        let c = with(|p| {
            p.ports.http = Some(-1);
            p.ports.dns = Some(-1);
        })
        .unwrap();
        assert_eq!((c.ports.http, c.ports.dns), (-1, -1));
    }

    #[test]
    fn addresses() {
        let c = with(|p| p.client_addr = Some("127.0.0.1  127.0.0.2 127.0.0.1".into())).unwrap();
        assert_eq!(c.client_addrs.len(), 2, "duplicates are dropped");
        assert_eq!(
            err(|p| p.client_addr = Some("localhost".into())),
            "client_addr: \"localhost\" is not an IP address"
        );
        assert_eq!(
            err(|p| p.client_addr = Some("  ".into())),
            "client_addr cannot be empty"
        );
        let many = (1..=CLIENT_ADDRS_MAX + 1)
            .map(|i| format!("127.0.0.{i}"))
            .collect::<Vec<_>>();
        assert!(err(|p| p.client_addr = Some(many.join(" "))).contains("at most 16"));
        let c = with(|p| p.bind_addr = Some("127.0.0.5".into())).unwrap();
        assert_eq!(c.advertise_addr.to_string(), "127.0.0.5");
        let c = with(|p| {
            p.bind_addr = Some("0.0.0.0".into());
            p.advertise_addr = Some("10.1.2.3".into());
        })
        .unwrap();
        assert_eq!(c.advertise_addr.to_string(), "10.1.2.3");
        assert_eq!(
            err(|p| p.advertise_addr = Some("0.0.0.0".into())),
            "Advertise address cannot be 0.0.0.0, :: or [::]"
        );
    }

    #[test]
    fn unspecified_bind_picks_the_single_private_ip() {
        let mut p = PartialConfig {
            data_dir: Some("/d".into()),
            bind_addr: Some("0.0.0.0".into()),
            ..Default::default()
        };
        let one = HostFacts {
            hostname: "h".into(),
            private_ipv4: vec![Ipv4Addr::new(10, 0, 0, 5)],
        };
        assert_eq!(
            resolve(p.clone(), &one, vec![]).unwrap().advertise_addr.to_string(),
            "10.0.0.5"
        );
        let two = HostFacts {
            hostname: "h".into(),
            private_ipv4: vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(192, 168, 1, 2)],
        };
        assert!(resolve(p.clone(), &two, vec![])
            .unwrap_err()
            .to_string()
            .starts_with("Multiple private IPv4 addresses found."));
        let c = resolve(p.clone(), &host(), vec![]).unwrap();
        assert_eq!(c.advertise_addr.to_string(), "127.0.0.1");
        assert_eq!(c.warnings.len(), 1);
        p.bind_addr = Some("nope".into());
        assert!(resolve(p, &host(), vec![]).is_err());
    }

    #[test]
    fn server_mode_rules() {
        assert_eq!(
            err(|p| p.bootstrap = Some(true)),
            "'bootstrap = true' requires 'server = true'"
        );
        assert_eq!(
            err(|p| p.bootstrap_expect = Some(3)),
            "'bootstrap_expect > 0' requires 'server = true'"
        );
        assert_eq!(
            err(|p| {
                p.server = Some(true);
                p.bootstrap = Some(true);
                p.bootstrap_expect = Some(1);
            }),
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive"
        );
        assert!(err(|p| {
            p.server = Some(true);
            p.bootstrap_expect = Some(-1);
        })
        .starts_with("bootstrap_expect: invalid value"));
        let c = with(|p| {
            p.server = Some(true);
            p.bootstrap_expect = Some(3);
        })
        .unwrap();
        assert_eq!(c.bootstrap_expect, 3);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = with(|p| {
            p.server = Some(true);
            p.bootstrap_expect = Some(4);
        })
        .unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("bootstrap_expect = 4")));
    }

    #[test]
    fn node_identity() {
        let c = with(|p| p.node_id = Some("ADF4238A-882B-9DDC-4A9D-5B6758E4159E".into())).unwrap();
        assert_eq!(c.node_id.as_deref(), Some("adf4238a-882b-9ddc-4a9d-5b6758e4159e"));
        assert_eq!(
            err(|p| p.node_id = Some("abc".into())),
            "node_id \"abc\" is not a valid UUID"
        );
        let c = with(|p| p.node_name = Some("web.example".into())).unwrap();
        assert!(c.warnings[0].contains("will not be discoverable via DNS due to invalid characters"));
        assert_eq!(err(|p| p.node_name = Some(String::new())), "node_name cannot be empty");
    }

    #[test]
    fn node_meta_limits() {
        let c = with(|p| {
            p.node_meta.insert("rack".into(), "r1".into());
        })
        .unwrap();
        assert_eq!(c.node_meta.len(), 1);
        assert!(err(|p| {
            p.node_meta.insert("consul-version".into(), "x".into());
        })
        .contains("reserved"));
        assert!(err(|p| {
            for i in 0..=NODE_META_PAIRS_MAX {
                p.node_meta.insert(format!("k{i}"), "v".into());
            }
        })
        .contains("more than 64"));
        assert!(err(|p| {
            p.node_meta.insert("k".repeat(NODE_META_KEY_CHARS_MAX + 1), "v".into());
        })
        .contains("Key is too long"));
        assert!(err(|p| {
            p.node_meta
                .insert("k".into(), "v".repeat(NODE_META_VALUE_CHARS_MAX + 1));
        })
        .contains("Value is too long"));
        assert!(err(|p| {
            p.node_meta.insert("a b".into(), "v".into());
        })
        .contains("invalid characters"));
    }

    #[test]
    fn domain_log_level_and_query_times() {
        assert_eq!(
            with(|p| p.domain = Some("Example.COM".into())).unwrap().domain,
            "example.com."
        );
        assert_eq!(with(|p| p.domain = Some("consul.".into())).unwrap().domain, "consul.");
        assert!(err(|p| p.domain = Some("a..b".into())).contains("not a valid DNS name"));
        assert_eq!(
            err(|p| p.log_level = Some("loud".into())),
            "Invalid log level: loud. Valid log levels are: [TRACE DEBUG INFO WARN ERR]"
        );
        let c = with(|p| {
            p.default_query_time = Some("30s".into());
            p.max_query_time = Some("1m".into());
        })
        .unwrap();
        assert_eq!((c.default_query_time_ms, c.max_query_time_ms), (30_000, 60_000));
        assert_eq!(
            err(|p| p.max_query_time = Some("soon".into())),
            "max_query_time: time: invalid duration \"soon\""
        );
        assert_eq!(
            err(|p| p.default_query_time = Some("0".into())),
            "default_query_time must be greater than zero"
        );
        assert!(err(|p| p.http_max_conns_per_client = Some(-5)).contains("http_max_conns_per_client"));
        assert!(err(|p| p.dataplane_threads = Some(-1)).contains("dataplane_threads"));
        assert!(err(|p| p.dataplane_threads = Some(5000)).contains("dataplane_threads"));
    }

    #[test]
    fn wake_hold_ms_max_defaults_accepts_zero_and_is_bounded() {
        assert_eq!(with(|_| {}).unwrap().wake_hold_ms_max, WAKE_HOLD_MS_MAX_DEFAULT);
        assert_eq!(with(|p| p.wake_hold_ms_max = Some(0)).unwrap().wake_hold_ms_max, 0);
        assert_eq!(with(|p| p.wake_hold_ms_max = Some(20)).unwrap().wake_hold_ms_max, 20);
        assert_eq!(
            err(|p| p.wake_hold_ms_max = Some(-1)),
            "limits.wake_hold_ms_max: invalid value -1 (0 to 1000; 0 = off)"
        );
        assert!(err(|p| p.wake_hold_ms_max = Some(1001)).contains("limits.wake_hold_ms_max"));
    }
}
