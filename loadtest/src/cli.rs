//! Command line: one sub-command per kind of load. Parsing is clap's;
//! [`HttpArgs::validate`] and friends turn the bounds in [`crate::limits`]
//! into clear errors before any socket is opened.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::limits::{
    DNS_BATCH_MAX, DNS_RATE_QPS_MAX, DNS_SOCKETS_MAX, DNS_WINDOW_MAX, HTTP_CONNECTIONS_MAX, PIPELINE_DEPTH_MAX,
    PREPARE_KEYS_MAX, PREPARE_SERVICES_MAX, PREPARE_VALUE_BYTES_MAX, RUN_SECONDS_MAX, SOURCE_IPS_MAX, THREADS_MAX,
    TIMEOUT_MS_MAX,
};

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "proconsul-loadtest",
    version,
    about = "Load generator for Proconsul and its peers; reports throughput per server CPU-core"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One kind of load per sub-command. New kinds (blocking-query watches,
/// writes) are new variants.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keep-alive HTTP/1.1 GET load, closed loop, optionally pipelined.
    Http(HttpArgs),
    /// UDP DNS queries, closed loop with a window or at a fixed rate.
    Dns(DnsArgs),
    /// Writes KV keys through the HTTP API so a GET load has something to read.
    PrepareKv(PrepareKvArgs),
    /// Registers services `svc<i>` on nodes `node<i>` (the peer kit's zone)
    /// so a DNS load has something to resolve.
    PrepareCatalog(PrepareCatalogArgs),
    /// Holds many concurrent blocking KV queries; measures memory per
    /// parked query, idle CPU and the fan-out of writes.
    Watch(crate::watch::WatchArgs),
    /// Closed-loop KV writes from C clients (Proconsul or etcd): acked writes/s, latency.
    Put(crate::write::put::PutArgs),
    /// Time from a write on the leader until a client agent shows it (HTTP, DNS).
    Visibility(crate::write::visibility::VisibilityArgs),
    /// Kill the leader under writes; time to the next acknowledged write.
    Failover(crate::write::failover::FailoverArgs),
    /// A check's result on an agent until its service leaves (and rejoins) that agent's DNS.
    CheckFlip(crate::write::check_flip::CheckFlipArgs),
}

/// What every measured run shares: how long, whom to meter, where results go.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Measured seconds (after the warm-up).
    #[arg(long = "duration-s", default_value_t = 10)]
    pub duration_s: u64,
    /// Seconds of load before measuring starts (connections open, caches warm).
    #[arg(long = "warmup-s", default_value_t = 1)]
    pub warmup_s: u64,
    /// Root pid of the server; the CPU of it and all its descendants is metered.
    #[arg(long = "server-pid")]
    pub server_pid: Option<u32>,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

/// `http` sub-command.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Server address (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub target: SocketAddr,
    /// Request path; repeat for several (each connection cycles through them).
    #[arg(long = "path")]
    pub paths: Vec<String>,
    /// File with one request path per line (blank lines and `#` comments skipped).
    #[arg(long = "paths-file")]
    pub paths_file: Option<PathBuf>,
    /// Open connections, spread over the threads.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Generator threads, each with its own epoll loop.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Requests kept outstanding per connection (1 = no pipelining).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Source addresses, used round-robin per connection (more ephemeral ports).
    #[arg(long = "source-ips", value_delimiter = ',')]
    pub source_ips: Vec<Ipv4Addr>,
    /// A connection whose oldest request waits longer than this is counted
    /// as timed out and reopened.
    #[arg(long = "timeout-ms", default_value_t = 5_000)]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `dns` sub-command.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Server address (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1:8600")]
    pub target: SocketAddr,
    /// File of queries, one `name TYPE` per line.
    #[arg(long = "queries-file")]
    pub queries_file: PathBuf,
    /// Queries outstanding at most.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// UDP sockets (each its own source port, so the server spreads them).
    #[arg(long, default_value_t = 8)]
    pub sockets: usize,
    /// Queries per `sendmmsg`, replies per `recvmmsg`.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Fixed rate in queries per second instead of closed loop (the window
    /// still caps what is outstanding).
    #[arg(long)]
    pub rate: Option<u64>,
    /// A query unanswered after this long is counted lost.
    #[arg(long = "timeout-ms", default_value_t = 1_000)]
    pub timeout_ms: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `prepare-kv` sub-command.
#[derive(Debug, Clone, Args)]
pub struct PrepareKvArgs {
    /// Server address (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub target: SocketAddr,
    /// How many keys to write: `<prefix>000000`, `<prefix>000001`, ...
    #[arg(long, default_value_t = 1)]
    pub keys: u64,
    /// Size of each value in bytes (printable ASCII, from a seeded generator).
    #[arg(long = "value-bytes", default_value_t = 300)]
    pub value_bytes: usize,
    /// Key prefix.
    #[arg(long, default_value = "bench/key-")]
    pub prefix: String,
    /// Parallel writers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seed of the value generator (same seed, same values).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the GET path of every key to this file (input for `http --paths-file`).
    #[arg(long = "paths-out")]
    pub paths_out: Option<PathBuf>,
    /// Per-request timeout.
    #[arg(long = "timeout-ms", default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// `prepare-catalog` sub-command.
#[derive(Debug, Clone, Args)]
pub struct PrepareCatalogArgs {
    /// Server address (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1:8500")]
    pub target: SocketAddr,
    /// How many services (each on its own node): `svc0` .. `svc<N-1>`.
    #[arg(long, default_value_t = 10_000)]
    pub services: u64,
    /// Parallel writers, each on its own keep-alive connection.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Per-request timeout.
    #[arg(long = "timeout-ms", default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// A command line that parsed but asks for something out of bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<(), ArgError> {
    if value < min || value > max {
        return Err(ArgError(format!("{name} must be in {min}..={max}, got {value}")));
    }
    Ok(())
}

fn check_loopback(name: &str, ip: IpAddr) -> Result<(), ArgError> {
    if !ip.is_loopback() {
        return Err(ArgError(format!(
            "{name} {ip} is outside 127.0.0.0/8: this tool measures servers on this machine only"
        )));
    }
    Ok(())
}

impl RunArgs {
    /// Checks the run length.
    pub fn validate(&self) -> Result<(), ArgError> {
        check_range("--duration-s", self.duration_s, 1, RUN_SECONDS_MAX)?;
        check_range("--warmup-s", self.warmup_s, 0, RUN_SECONDS_MAX - self.duration_s)?;
        if self.server_pid == Some(0) {
            return Err(ArgError("--server-pid must be a process id, not 0".into()));
        }
        Ok(())
    }
}

impl HttpArgs {
    /// Checks every bound; paths themselves are checked when loaded.
    pub fn validate(&self) -> Result<(), ArgError> {
        self.run.validate()?;
        check_loopback("--target", self.target.ip())?;
        check_range("--threads", self.threads as u64, 1, THREADS_MAX as u64)?;
        check_range(
            "--connections",
            self.connections as u64,
            self.threads as u64,
            HTTP_CONNECTIONS_MAX as u64,
        )?;
        check_range("--pipeline", self.pipeline as u64, 1, PIPELINE_DEPTH_MAX as u64)?;
        check_range("--timeout-ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)?;
        if self.source_ips.len() > SOURCE_IPS_MAX {
            return Err(ArgError(format!(
                "--source-ips lists {} addresses, at most {SOURCE_IPS_MAX}",
                self.source_ips.len()
            )));
        }
        for ip in &self.source_ips {
            check_loopback("--source-ips", IpAddr::V4(*ip))?;
        }
        if self.paths.is_empty() && self.paths_file.is_none() {
            return Err(ArgError("give at least one --path or a --paths-file".into()));
        }
        if !self.target.is_ipv4() && !self.source_ips.is_empty() {
            return Err(ArgError("--source-ips are IPv4; the target is IPv6".into()));
        }
        Ok(())
    }
}

impl DnsArgs {
    /// Checks every bound; queries are checked when the file is loaded.
    pub fn validate(&self) -> Result<(), ArgError> {
        self.run.validate()?;
        check_loopback("--target", self.target.ip())?;
        check_range("--window", self.window as u64, 1, DNS_WINDOW_MAX as u64)?;
        check_range("--sockets", self.sockets as u64, 1, DNS_SOCKETS_MAX as u64)?;
        check_range("--batch", self.batch as u64, 1, DNS_BATCH_MAX as u64)?;
        check_range("--timeout-ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)?;
        if let Some(rate) = self.rate {
            check_range("--rate", rate, 1, DNS_RATE_QPS_MAX)?;
        }
        Ok(())
    }
}

impl PrepareKvArgs {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ArgError> {
        check_loopback("--target", self.target.ip())?;
        check_range("--keys", self.keys, 1, PREPARE_KEYS_MAX)?;
        check_range(
            "--value-bytes",
            self.value_bytes as u64,
            0,
            PREPARE_VALUE_BYTES_MAX as u64,
        )?;
        check_range("--connections", self.connections as u64, 1, THREADS_MAX as u64)?;
        check_range("--timeout-ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)?;
        if self.prefix.is_empty() || self.prefix.starts_with('/') {
            return Err(ArgError(
                "--prefix must be non-empty and must not start with '/'".into(),
            ));
        }
        if !self
            .prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#' && b != b'%')
        {
            return Err(ArgError(
                "--prefix must be printable ASCII without spaces, '?', '#' or '%' (it goes into URLs as is)".into(),
            ));
        }
        Ok(())
    }
}

impl PrepareCatalogArgs {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ArgError> {
        check_loopback("--target", self.target.ip())?;
        check_range("--services", self.services, 1, PREPARE_SERVICES_MAX)?;
        check_range("--connections", self.connections as u64, 1, THREADS_MAX as u64)?;
        check_range("--timeout-ms", self.timeout_ms, 1, TIMEOUT_MS_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        let mut argv = vec!["proconsul-loadtest"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").command
    }

    #[test]
    fn http_defaults_and_lists() {
        let Command::Http(a) = parse(&[
            "http",
            "--path",
            "/v1/kv/a",
            "--path",
            "/v1/kv/b",
            "--server-pid",
            "42",
            "--source-ips",
            "127.0.0.1,127.0.0.2",
        ]) else {
            panic!("not http")
        };
        assert_eq!(a.target, "127.0.0.1:8500".parse().unwrap());
        assert_eq!(a.paths, vec!["/v1/kv/a", "/v1/kv/b"]);
        assert_eq!(a.connections, 64);
        assert_eq!(a.threads, 1);
        assert_eq!(a.pipeline, 1);
        assert_eq!(a.run.duration_s, 10);
        assert_eq!(a.run.server_pid, Some(42));
        assert_eq!(
            a.source_ips,
            vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)]
        );
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn http_bounds_are_errors() {
        let Command::Http(a) = parse(&["http", "--path", "/", "--connections", "20000"]) else {
            panic!("not http")
        };
        assert!(a
            .validate()
            .unwrap_err()
            .0
            .contains("--connections must be in 1..=16384"));
        let Command::Http(a) = parse(&["http", "--path", "/", "--pipeline", "129"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("--pipeline"));
        let Command::Http(a) = parse(&["http", "--path", "/", "--threads", "4", "--connections", "2"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("--connections must be in 4..="));
        let Command::Http(a) = parse(&["http"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("--path"));
        let Command::Http(a) = parse(&["http", "--path", "/", "--duration-s", "3601"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("--duration-s"));
    }

    #[test]
    fn non_loopback_is_refused() {
        let Command::Http(a) = parse(&["http", "--path", "/", "--target", "10.0.0.1:80"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("outside 127.0.0.0/8"));
        let Command::Http(a) = parse(&["http", "--path", "/", "--source-ips", "127.0.0.1,192.168.1.1"]) else {
            panic!("not http")
        };
        assert!(a.validate().unwrap_err().0.contains("192.168.1.1"));
    }

    #[test]
    fn dns_args_and_bounds() {
        let Command::Dns(a) = parse(&["dns", "--queries-file", "q.txt", "--rate", "50000"]) else {
            panic!("not dns")
        };
        assert_eq!(a.target, "127.0.0.1:8600".parse().unwrap());
        assert_eq!(a.window, 256);
        assert_eq!(a.rate, Some(50_000));
        assert_eq!(a.validate(), Ok(()));
        let Command::Dns(a) = parse(&["dns", "--queries-file", "q", "--window", "40000"]) else {
            panic!("not dns")
        };
        assert!(a.validate().unwrap_err().0.contains("--window"));
        let Command::Dns(a) = parse(&["dns", "--queries-file", "q", "--batch", "65"]) else {
            panic!("not dns")
        };
        assert!(a.validate().unwrap_err().0.contains("--batch"));
        let Command::Dns(a) = parse(&["dns", "--queries-file", "q", "--rate", "0"]) else {
            panic!("not dns")
        };
        assert!(a.validate().unwrap_err().0.contains("--rate"));
    }

    #[test]
    fn prepare_kv_args_and_bounds() {
        let Command::PrepareKv(a) = parse(&["prepare-kv", "--keys", "10", "--value-bytes", "300"]) else {
            panic!("not prepare-kv")
        };
        assert_eq!(a.prefix, "bench/key-");
        assert_eq!(a.validate(), Ok(()));
        let Command::PrepareKv(a) = parse(&["prepare-kv", "--value-bytes", "600000"]) else {
            panic!("not prepare-kv")
        };
        assert!(a.validate().unwrap_err().0.contains("--value-bytes"));
        let Command::PrepareKv(a) = parse(&["prepare-kv", "--prefix", "a b"]) else {
            panic!("not prepare-kv")
        };
        assert!(a.validate().unwrap_err().0.contains("--prefix"));
    }

    #[test]
    fn prepare_catalog_args_and_bounds() {
        let Command::PrepareCatalog(a) = parse(&["prepare-catalog"]) else {
            panic!("not prepare-catalog")
        };
        assert_eq!(a.services, 10_000);
        assert_eq!(a.validate(), Ok(()));
        let Command::PrepareCatalog(a) = parse(&["prepare-catalog", "--services", "20000000"]) else {
            panic!("not prepare-catalog")
        };
        assert!(a.validate().unwrap_err().0.contains("--services"));
    }

    #[test]
    fn unknown_subcommand_and_bad_numbers_fail_to_parse() {
        assert!(Cli::try_parse_from(["proconsul-loadtest", "blast"]).is_err());
        assert!(Cli::try_parse_from(["proconsul-loadtest", "http", "--connections", "many"]).is_err());
        assert!(Cli::try_parse_from(["proconsul-loadtest", "http", "--target", "nowhere"]).is_err());
    }
}
