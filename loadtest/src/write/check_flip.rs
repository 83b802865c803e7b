//! The `check-flip` sub-command: how long after a check's result reaches
//! the agent its service leaves (and comes back into) the agent's DNS.
//!
//! The agent gets a service with a TTL check; each round marks the check
//! failed (`PUT /v1/agent/check/fail/<id>`, the check's result), polls the
//! same agent's DNS until the name has no answer, then marks it passing
//! and polls until it answers again. Reported: from the result's HTTP
//! acknowledgement to the DNS change (0 when DNS changed first), and from
//! sending the result.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use crate::latency::{LatencyRecorder, LatencySummary};
use crate::machine::MachineFacts;
use crate::write::client::Connection;
use crate::write::dns_probe::DnsProbe;
use crate::write::output::emit_json;
use crate::write::targets::check_loopback;

/// Most flips in one run.
pub const CHECK_FLIPS_MAX: u64 = 100_000;
/// Longest wait for one DNS change, in seconds.
const DNS_CHANGE_WAIT: Duration = Duration::from_secs(10);

/// `check-flip` sub-command.
#[derive(Debug, Clone, Args)]
pub struct CheckFlipArgs {
    /// HTTP address of the agent.
    #[arg(long)]
    pub target: SocketAddr,
    /// DNS address of the same agent (UDP).
    #[arg(long)]
    pub dns: SocketAddr,
    /// Rounds (each: fail, then pass).
    #[arg(long, default_value_t = 200)]
    pub flips: u64,
    /// Service registered for the run (also its DNS name).
    #[arg(long, default_value = "flip")]
    pub service: String,
    /// Name of the run in the summary.
    #[arg(long)]
    pub label: Option<String>,
    /// Also append the JSON summary line to this file.
    #[arg(long = "json-out")]
    pub json_out: Option<PathBuf>,
}

impl CheckFlipArgs {
    /// Checks every bound.
    pub fn validate(&self) -> anyhow::Result<()> {
        check_loopback(&self.target)?;
        check_loopback(&self.dns)?;
        if !(1..=CHECK_FLIPS_MAX).contains(&self.flips) {
            bail!("--flips must be in 1..={CHECK_FLIPS_MAX}, got {}", self.flips);
        }
        if self.service.is_empty() || !self.service.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            bail!("--service must be a DNS label (letters, digits, '-')");
        }
        Ok(())
    }

    fn check_id(&self) -> String {
        format!("{}-ttl", self.service)
    }
}

/// The agent registration of `service` with a passing TTL check `check_id`.
pub fn register_request(host: &str, service: &str, check_id: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "Name": service,
        "Port": 8080,
        "Check": { "CheckID": check_id, "TTL": "3600s", "Status": "passing" },
    })
    .to_string();
    put_request(host, "/v1/agent/service/register", body.as_bytes())
}

/// `PUT <path>` with `body`.
pub fn put_request(host: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: proconsul-loadtest\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Percentiles of one direction (to critical, or back to passing).
#[derive(Debug, Clone, Serialize)]
pub struct DirectionSummary {
    /// From the result's HTTP acknowledgement to the DNS change (0 when DNS changed first).
    pub ack_to_dns: LatencySummary,
    /// From sending the result to the DNS change.
    pub sent_to_dns: LatencySummary,
    /// Rounds where DNS changed before the acknowledgement was read.
    pub dns_before_ack: u64,
}

#[derive(Default)]
struct DirectionTimes {
    ack_to_dns: LatencyRecorder,
    sent_to_dns: LatencyRecorder,
    dns_before_ack: u64,
}

impl DirectionTimes {
    fn record(&mut self, sent: Instant, acked: Instant, changed: Instant) {
        self.sent_to_dns.record_ns(ns_between(sent, changed));
        self.ack_to_dns.record_ns(ns_between(acked, changed));
        if changed < acked {
            self.dns_before_ack += 1;
        }
    }

    fn summary(&self) -> DirectionSummary {
        DirectionSummary {
            ack_to_dns: self.ack_to_dns.summary(),
            sent_to_dns: self.sent_to_dns.summary(),
            dns_before_ack: self.dns_before_ack,
        }
    }
}

fn ns_between(a: Instant, b: Instant) -> u64 {
    b.saturating_duration_since(a).as_nanos() as u64
}

/// The run's JSON summary.
#[derive(Debug, Serialize)]
pub struct CheckFlipSummary {
    pub mode: &'static str,
    pub label: Option<String>,
    pub target: String,
    pub flips: u64,
    pub to_critical: DirectionSummary,
    pub to_passing: DirectionSummary,
    pub machine: MachineFacts,
}

/// Sends one check result; the instants it was sent and acknowledged.
fn send_result(conn: &mut Connection, host: &str, path: &str) -> anyhow::Result<(Instant, Instant)> {
    let sent = Instant::now();
    let answer = conn.exchange(&put_request(host, path, b""))?;
    let acked = Instant::now();
    if answer.status != 200 {
        bail!(
            "{path}: status {} ({})",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    Ok((sent, acked))
}

/// Runs the sub-command.
pub fn run(args: CheckFlipArgs) -> anyhow::Result<()> {
    args.validate()?;
    let host = args.target.to_string();
    let check_id = args.check_id();
    let name = format!("{}.service.consul", args.service);
    let mut conn = Connection::new(args.target, Duration::from_secs(10));
    let registered = conn
        .exchange(&register_request(&host, &args.service, &check_id))
        .context("registering the service")?;
    if registered.status != 200 {
        bail!("registering the service: status {}", registered.status);
    }
    let mut probe = DnsProbe::new(args.dns)?;
    probe
        .wait_answered(&name, Instant::now() + DNS_CHANGE_WAIT)
        .context("the service never appeared in DNS")?;
    let fail = format!("/v1/agent/check/fail/{check_id}");
    let pass = format!("/v1/agent/check/pass/{check_id}");
    let mut to_critical = DirectionTimes::default();
    let mut to_passing = DirectionTimes::default();
    for _ in 0..args.flips {
        let (sent, acked) = send_result(&mut conn, &host, &fail)?;
        let gone = probe.wait_unanswered(&name, sent + DNS_CHANGE_WAIT)?;
        to_critical.record(sent, acked, gone);
        let (sent, acked) = send_result(&mut conn, &host, &pass)?;
        let back = probe.wait_answered(&name, sent + DNS_CHANGE_WAIT)?;
        to_passing.record(sent, acked, back);
    }
    let summary = CheckFlipSummary {
        mode: "check-flip",
        label: args.label.clone(),
        target: host.clone(),
        flips: args.flips,
        to_critical: to_critical.summary(),
        to_passing: to_passing.summary(),
        machine: MachineFacts::of_this_machine(),
    };
    emit_json(&summary, args.json_out.as_deref())?;
    let _ = conn.exchange(&put_request(
        &host,
        &format!("/v1/agent/service/deregister/{}", args.service),
        b"",
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CheckFlipArgs {
        CheckFlipArgs {
            target: "127.0.0.1:8500".parse().unwrap(),
            dns: "127.0.0.1:8600".parse().unwrap(),
            flips: 10,
            service: "flip".into(),
            label: None,
            json_out: None,
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(args().validate().is_ok());
        assert!(CheckFlipArgs { flips: 0, ..args() }.validate().is_err());
        assert!(CheckFlipArgs {
            flips: CHECK_FLIPS_MAX + 1,
            ..args()
        }
        .validate()
        .is_err());
        assert!(CheckFlipArgs {
            service: "a.b".into(),
            ..args()
        }
        .validate()
        .is_err());
        assert!(CheckFlipArgs {
            target: "10.0.0.1:8500".parse().unwrap(),
            ..args()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn the_registration_carries_a_passing_ttl_check() {
        let req = String::from_utf8(register_request("h:1", "flip", "flip-ttl")).unwrap();
        assert!(req.starts_with("PUT /v1/agent/service/register HTTP/1.1\r\n"));
        let body: serde_json::Value = serde_json::from_str(req.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["Check"]["CheckID"], "flip-ttl");
        assert_eq!(body["Check"]["Status"], "passing");
        let len: usize = req
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.to_string().len());
    }

    #[test]
    fn a_dns_change_before_the_ack_counts_as_zero() {
        let mut t = DirectionTimes::default();
        let sent = Instant::now();
        let changed = sent + Duration::from_micros(300);
        let acked = sent + Duration::from_micros(500);
        t.record(sent, acked, changed);
        let s = t.summary();
        assert_eq!(s.dns_before_ack, 1);
        assert!(s.ack_to_dns.max_us < 0.01, "{:?}", s.ack_to_dns);
        assert_eq!(s.sent_to_dns.count, 1);
    }
}
