//! Registry tests: real probes against local servers, stop semantics,
//! limits, TTL expiry, and 500 checks on a two-thread runtime.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proconsul_shared::state::CheckStatus;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, Receiver};

use super::spec::spec_for_test;
use super::test_server::TestHttpServer;
use super::*;

fn limits_fast() -> ChecksLimits {
    ChecksLimits {
        first_run_stagger_max: Duration::from_millis(20),
        ..ChecksLimits::default()
    }
}

async fn next_report(rx: &mut Receiver<CheckReport>, within: Duration) -> Option<CheckReport> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

fn http_kind(url: String) -> CheckKind {
    CheckKind::Http {
        url,
        method: String::new(),
        headers: Default::default(),
        body: String::new(),
        tls_skip_verify: false,
        tls_server_name: String::new(),
        disable_redirects: false,
    }
}

#[tokio::test]
async fn probing_checks_report_through_the_channel() {
    let server = TestHttpServer::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_address = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::channel(16);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let mut spec = spec_for_test("web", http_kind(server.url("/ok")));
    spec.interval = Duration::from_secs(60);
    runners.start(spec).unwrap();
    let mut spec = spec_for_test(
        "port",
        CheckKind::Tcp {
            address: tcp_address.clone(),
        },
    );
    spec.interval = Duration::from_secs(60);
    runners.start(spec).unwrap();
    let mut spec = spec_for_test(
        "script",
        CheckKind::Script {
            args: vec!["sh".into(), "-c".into(), "exit 1".into()],
        },
    );
    spec.interval = Duration::from_secs(60);
    runners.start(spec).unwrap();
    assert_eq!(runners.len(), 3);

    let mut seen = Vec::new();
    for _ in 0..3 {
        let report = next_report(&mut rx, Duration::from_secs(5))
            .await
            .expect("a report per check");
        seen.push((report.check_id, report.status, report.output));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "port".to_string(),
                CheckStatus::Passing,
                format!("TCP connect {tcp_address}: Success")
            ),
            ("script".to_string(), CheckStatus::Warning, String::new()),
            (
                "web".to_string(),
                CheckStatus::Passing,
                format!("HTTP GET {}: 200 OK Output: ok", server.url("/ok"))
            ),
        ]
    );
}

#[tokio::test]
async fn thresholds_hold_back_reports() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("runs");
    // Passes on the first run, exits 2 (critical) on every later one.
    let script = format!(
        "n=$(cat {f} 2>/dev/null || echo 0); echo $((n+1)) > {f}; if [ $n -eq 0 ]; then exit 0; else exit 2; fi",
        f = counter.display()
    );
    let (tx, mut rx) = mpsc::channel(16);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let mut spec = spec_for_test(
        "flaky",
        CheckKind::Script {
            args: vec!["sh".into(), "-c".into(), script],
        },
    );
    spec.interval = Duration::from_millis(20);
    spec.failures_before_warning = 2;
    spec.failures_before_critical = 3;
    runners.start(spec).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(next_report(&mut rx, Duration::from_secs(5)).await.unwrap().status);
    }
    // Run 1 passes; run 2 (one failure) is held back; run 3 reaches the
    // warning threshold, run 4 the critical one.
    assert_eq!(
        statuses,
        vec![CheckStatus::Passing, CheckStatus::Warning, CheckStatus::Critical]
    );
    let runs: u32 = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
    assert!(runs >= 4, "{runs} runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_report_after_stop_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::channel(1024);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let mut spec = spec_for_test("busy", CheckKind::Tcp { address });
    spec.interval = Duration::from_millis(10);
    runners.start(spec).unwrap();
    for _ in 0..3 {
        next_report(&mut rx, Duration::from_secs(5))
            .await
            .expect("reports while running");
    }
    runners.stop("busy");
    assert!(runners.is_empty());
    // Reports sent before stop may still be queued; nothing after.
    while rx.try_recv().is_ok() {}
    assert_eq!(next_report(&mut rx, Duration::from_millis(300)).await, None);
    // Stopping again, or an unknown ID, is a no-op.
    runners.stop("busy");
    runners.stop("unknown");
}

#[tokio::test]
async fn stop_kills_a_running_script() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let (tx, _rx) = mpsc::channel(16);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let mut spec = spec_for_test(
        "sleepy",
        CheckKind::Script {
            args: vec!["sh".into(), "-c".into(), script],
        },
    );
    spec.timeout = Duration::from_secs(60);
    runners.start(spec).unwrap();
    let started = Instant::now();
    let pid = loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                break pid;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(5), "script never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let proc_dir = format!("/proc/{pid}");
    assert!(std::path::Path::new(&proc_dir).exists());
    runners.stop("sleepy");
    let stopped = Instant::now();
    // Gone, or a zombie about to be reaped.
    while std::fs::read_to_string(format!("{proc_dir}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(stopped.elapsed() < Duration::from_secs(5), "script survived stop");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn restart_replaces_the_runner() {
    let server = TestHttpServer::start().await;
    let (tx, mut rx) = mpsc::channel(16);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let mut spec = spec_for_test("web", http_kind(server.url("/fail")));
    spec.interval = Duration::from_secs(60);
    runners.start(spec.clone()).unwrap();
    assert_eq!(
        next_report(&mut rx, Duration::from_secs(5)).await.unwrap().status,
        CheckStatus::Critical
    );
    spec.kind = http_kind(server.url("/ok"));
    runners.start(spec).unwrap();
    assert_eq!(runners.len(), 1);
    assert_eq!(
        next_report(&mut rx, Duration::from_secs(5)).await.unwrap().status,
        CheckStatus::Passing
    );
}

#[tokio::test]
async fn runner_limit_refuses_new_checks_but_allows_restarts() {
    let (tx, _rx) = mpsc::channel(16);
    let limits = ChecksLimits {
        runners_max: 2,
        ..limits_fast()
    };
    let mut runners = CheckRunners::with_limits(tx, limits);
    let ttl = CheckKind::Ttl {
        ttl: Duration::from_secs(60),
    };
    runners.start(spec_for_test("a", ttl.clone())).unwrap();
    runners.start(spec_for_test("b", ttl.clone())).unwrap();
    assert_eq!(
        runners.start(spec_for_test("c", ttl.clone())),
        Err(ChecksError::TooManyRunners { limit: 2 })
    );
    assert_eq!(
        ChecksError::TooManyRunners { limit: 2 }.to_string(),
        "too many health checks on this agent (limit 2)"
    );
    runners.start(spec_for_test("a", ttl.clone())).unwrap();
    runners.stop("b");
    runners.start(spec_for_test("c", ttl)).unwrap();
    assert_eq!(runners.len(), 2);
}

#[tokio::test]
async fn invalid_specs_are_refused() {
    let (tx, _rx) = mpsc::channel(16);
    let mut runners = CheckRunners::new(tx);
    let ttl = CheckKind::Ttl {
        ttl: Duration::from_secs(60),
    };
    assert!(matches!(
        runners.start(spec_for_test("", ttl)),
        Err(ChecksError::InvalidCheck(_))
    ));
    let no_args = CheckKind::Script { args: Vec::new() };
    assert!(matches!(
        runners.start(spec_for_test("s", no_args)),
        Err(ChecksError::InvalidCheck(_))
    ));
    assert!(runners.is_empty());
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let (tx, _rx) = mpsc::channel(16);
    let mut runners = CheckRunners::new(tx);
    let spec = spec_for_test(
        "t",
        CheckKind::Ttl {
            ttl: Duration::from_secs(1),
        },
    );
    assert_eq!(runners.start(spec), Err(ChecksError::NoRuntime));
}

#[tokio::test]
async fn ttl_expires_once_and_touches_postpone_it() {
    let (tx, mut rx) = mpsc::channel(16);
    let mut runners = CheckRunners::with_limits(tx, limits_fast());
    let ttl = Duration::from_millis(300);
    runners.start(spec_for_test("ttl", CheckKind::Ttl { ttl })).unwrap();
    // Touched every 50 ms for 600 ms, twice the TTL: never expires.
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        runners.ttl_touched("ttl");
    }
    assert!(rx.try_recv().is_err(), "expired although touched");
    let expired = next_report(&mut rx, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        expired,
        CheckReport {
            check_id: "ttl".into(),
            status: CheckStatus::Critical,
            output: "TTL expired".into()
        }
    );
    // Reported once, not once per TTL.
    assert_eq!(next_report(&mut rx, Duration::from_millis(400)).await, None);
    // An update restarts the timer and shows its output on expiry.
    assert!(runners.ttl_updated("ttl", "all good"));
    let expired = next_report(&mut rx, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        expired.output,
        "TTL expired (last output before timeout follows): all good"
    );
    // Not a TTL check, or unknown: nothing to update.
    assert!(!runners.ttl_updated("nope", "x"));
    runners.ttl_touched("nope");
}

/// Threads of this process, from `/proc/self/status`.
fn process_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_checks_on_two_worker_threads() {
    const HTTP_CHECKS: usize = 200;
    const TCP_CHECKS: usize = 200;
    const TTL_CHECKS: usize = 100;
    let server = TestHttpServer::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_address = listener.local_addr().unwrap().to_string();
    let acceptor = tokio::spawn(async move {
        // Accept and drop, so the backlog never fills.
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let (tx, mut rx) = mpsc::channel(1024);
    let limits = ChecksLimits {
        first_run_stagger_max: Duration::from_secs(1),
        ..ChecksLimits::default()
    };
    let mut runners = CheckRunners::with_limits(tx, limits);
    for i in 0..HTTP_CHECKS {
        let mut spec = spec_for_test(&format!("http-{i}"), http_kind(server.url("/ok")));
        spec.interval = Duration::from_secs(30);
        runners.start(spec).unwrap();
    }
    for i in 0..TCP_CHECKS {
        let mut spec = spec_for_test(
            &format!("tcp-{i}"),
            CheckKind::Tcp {
                address: tcp_address.clone(),
            },
        );
        spec.interval = Duration::from_secs(30);
        runners.start(spec).unwrap();
    }
    for i in 0..TTL_CHECKS {
        runners
            .start(spec_for_test(
                &format!("ttl-{i}"),
                CheckKind::Ttl {
                    ttl: Duration::from_millis(500),
                },
            ))
            .unwrap();
    }
    assert_eq!(runners.len(), 500);
    assert_eq!(tokio::runtime::Handle::current().metrics().num_workers(), 2);

    let started = Instant::now();
    let mut reported = HashSet::new();
    let mut threads_max = 0;
    while reported.len() < 500 && started.elapsed() < Duration::from_secs(15) {
        threads_max = threads_max.max(process_threads());
        if let Some(report) = next_report(&mut rx, Duration::from_millis(100)).await {
            let expected = if report.check_id.starts_with("ttl-") {
                CheckStatus::Critical
            } else {
                CheckStatus::Passing
            };
            assert_eq!(report.status, expected, "{report:?}");
            reported.insert(report.check_id);
        }
    }
    assert_eq!(
        reported.len(),
        500,
        "only {} checks reported in {:?}",
        reported.len(),
        started.elapsed()
    );
    // Tasks, not threads: the process (test harness included) stays far
    // below one thread per check.
    assert!(threads_max < 100, "{threads_max} threads for 500 checks");
    drop(runners);
    acceptor.abort();
}
