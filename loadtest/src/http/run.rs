//! The `http` sub-command: load the paths, start the threads, meter the
//! measured window, report.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::HttpArgs;
use crate::cpu::meter::CpuMeter;
use crate::http::driver::{run_thread, ThreadPlan};
use crate::http::request::{check_path, get_request, parse_paths};
use crate::http::stats::HttpStats;
use crate::input_file::read_bounded;
use crate::measure::run_window;
use crate::phase::RunControl;
use crate::report::{DetailRows, Summary};

/// How long the pre-flight connect may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// HTTP-specific part of the summary.
#[derive(Debug, Clone, Serialize)]
pub struct HttpDetails {
    pub connections: usize,
    pub threads: usize,
    pub pipeline: usize,
    pub paths: usize,
    pub responses: u64,
    pub status_counts: BTreeMap<u16, u64>,
    pub wire_bytes: u64,
    pub body_bytes: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub protocol_errors: u64,
    pub timeouts: u64,
    pub reconnects: u64,
    pub server_closes: u64,
}

impl DetailRows for HttpDetails {
    fn rows(&self) -> Vec<(String, String)> {
        let statuses: Vec<String> = self.status_counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let per_response = |bytes: u64| bytes.checked_div(self.responses).unwrap_or(0);
        vec![
            (
                "connections / threads / pipeline".into(),
                format!("{} / {} / {}", self.connections, self.threads, self.pipeline),
            ),
            ("responses".into(), self.responses.to_string()),
            ("status codes".into(), statuses.join(", ")),
            (
                "bytes per response (wire / body)".into(),
                format!("{} / {}", per_response(self.wire_bytes), per_response(self.body_bytes)),
            ),
            (
                "errors (connect / io / protocol / timeout)".into(),
                format!(
                    "{} / {} / {} / {}",
                    self.connect_errors, self.io_errors, self.protocol_errors, self.timeouts
                ),
            ),
            (
                "reconnects (of which server closes)".into(),
                format!("{} ({})", self.reconnects, self.server_closes),
            ),
        ]
    }
}

/// Every path of the run: `--path`s then the file's.
fn load_paths(args: &HttpArgs) -> anyhow::Result<Vec<String>> {
    let mut paths = Vec::new();
    for p in &args.paths {
        check_path(p).map_err(anyhow::Error::msg)?;
        paths.push(p.clone());
    }
    if let Some(file) = &args.paths_file {
        let text = read_bounded(file)?;
        paths.extend(parse_paths(&text).with_context(|| format!("in {}", file.display()))?);
    }
    if paths.len() > crate::limits::INPUT_LINES_MAX {
        bail!("{} paths; at most {}", paths.len(), crate::limits::INPUT_LINES_MAX);
    }
    Ok(paths)
}

/// Splits `total` connections over `threads`: the first ones get one more.
pub fn split_connections(total: usize, threads: usize) -> Vec<(usize, usize)> {
    assert!(
        threads > 0 && total >= threads,
        "validated: at least one connection per thread"
    );
    let base = total / threads;
    let extra = total % threads;
    let mut first = 0;
    (0..threads)
        .map(|t| {
            let n = base + usize::from(t < extra);
            let range = (first, n);
            first += n;
            range
        })
        .collect()
}

fn host_header(target: SocketAddr) -> String {
    target.to_string()
}

/// Runs the `http` sub-command.
pub fn run(args: HttpArgs) -> anyhow::Result<()> {
    args.validate()?;
    let paths = load_paths(&args)?;
    let host = host_header(args.target);
    let requests: Arc<[Vec<u8>]> = paths.iter().map(|p| get_request(&host, p)).collect::<Vec<_>>().into();
    TcpStream::connect_timeout(&args.target, PROBE_TIMEOUT)
        .with_context(|| format!("cannot connect to {}", args.target))?;
    let meter = CpuMeter::new(args.run.server_pid)?;
    let control = Arc::new(RunControl::new());
    let plans: Vec<ThreadPlan> = split_connections(args.connections, args.threads)
        .into_iter()
        .map(|(first, n)| ThreadPlan {
            target: args.target,
            source_ips: args.source_ips.clone(),
            connections: n,
            first_connection: first,
            requests: requests.clone(),
            pipeline_depth: args.pipeline,
            timeout_ns: args.timeout_ms * 1_000_000,
        })
        .collect();
    let handles: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(t, plan)| {
            let control = control.clone();
            std::thread::Builder::new()
                .name(format!("http-load-{t}"))
                .spawn(move || run_thread(&plan, &control))
                .context("spawning a generator thread")
        })
        .collect::<anyhow::Result<_>>()?;
    let window = run_window(
        &control,
        &meter,
        Duration::from_secs(args.run.warmup_s),
        Duration::from_secs(args.run.duration_s),
    );
    let mut total = HttpStats::default();
    let mut failures = Vec::new();
    for (t, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(stats)) => total.merge(&stats),
            Ok(Err(e)) => failures.push(format!("thread {t}: {e:#}")),
            Err(_) => failures.push(format!("thread {t} panicked")),
        }
    }
    let window = window?;
    if !failures.is_empty() {
        bail!("the load failed: {}", failures.join("; "));
    }
    let details = HttpDetails {
        connections: args.connections,
        threads: args.threads,
        pipeline: args.pipeline,
        paths: paths.len(),
        responses: total.responses,
        status_counts: total.status_counts.clone(),
        wire_bytes: total.wire_bytes,
        body_bytes: total.body_bytes,
        connect_errors: total.connect_errors,
        io_errors: total.io_errors,
        protocol_errors: total.protocol_errors,
        timeouts: total.timeouts,
        reconnects: total.reconnects,
        server_closes: total.server_closes,
    };
    let summary = Summary::new(
        "http",
        args.run.label.clone(),
        args.target.to_string(),
        &window,
        total.successes(),
        total.latency.summary(),
        details,
    );
    summary.emit(args.run.json_out.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_split_evenly_with_the_remainder_first() {
        assert_eq!(split_connections(64, 1), vec![(0, 64)]);
        assert_eq!(split_connections(10, 3), vec![(0, 4), (4, 3), (7, 3)]);
        let split = split_connections(16_384, 64);
        assert_eq!(split.iter().map(|(_, n)| n).sum::<usize>(), 16_384);
    }
}
