//! Linearizability of the KV store under leader kills: three servers and a
//! client agent, a few worker threads running random writes, `?consistent`
//! reads and compare-and-sets (on the `ModifyIndex` just read) against
//! random live agents, while the leader is killed with SIGKILL and
//! restarted twice. The recorded history (invocation and completion
//! instants, answers; an error or timeout is an unknown outcome) is checked
//! with the Wing & Gong checker of `proconsul-loadtest`; a violation fails
//! the test with the offending key's history.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use common::agent::fresh_loopback_ip;
use common::cluster::{client_spec, eventually, kill_node, leader_of, server_spec, start_all};
use common::{http, Agent};
use proconsul_loadtest::linearizability::{check_history, Input, Operation, Output, Verdict, OPS_PER_KEY_MAX};
use tempfile::TempDir;

/// Worker threads issuing operations.
const WORKERS: usize = 6;
/// Keys the workers share (few, so operations overlap).
const KEYS: usize = 5;
/// How long the workers run.
const RUN: Duration = Duration::from_secs(18);
/// Pause between one worker's operations (paces the history so it covers
/// both leader kills without exceeding the checker's bounds).
const PAUSE: Duration = Duration::from_millis(40);
/// Pause after an operation that failed (an election is under way).
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(250);
/// Operations recorded in all, so no key exceeds the checker's bound.
const OPS_MAX: usize = KEYS * OPS_PER_KEY_MAX * 7 / 10;
/// Longest wait for one HTTP answer; beyond it the outcome is unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the workers share.
struct Shared {
    started: Instant,
    /// Every agent's HTTP address, and whether it is up (a killed agent is
    /// not sent requests it cannot answer).
    targets: Vec<(SocketAddr, AtomicBool)>,
    history: Mutex<Vec<Operation>>,
    /// Why operations failed (status and text, or the IO error), counted,
    /// for the report.
    failure_causes: Mutex<BTreeMap<String, usize>>,
    recorded: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn record(&self, op: Operation) {
        self.recorded.fetch_add(1, Ordering::SeqCst);
        self.history.lock().unwrap().push(op);
    }

    /// Records a write or CAS: answered or unknown outcomes go into the
    /// history, one refused before it was sent is only counted.
    fn record_put(
        &self,
        key: String,
        input: Input,
        called: u64,
        returned: Option<(u64, Output)>,
        ended: Ended<bool>,
        what: &str,
    ) {
        match ended {
            Ended::Refused(cause) => {
                self.note_failure(what, &format!("(refused, left out) {cause}"));
                return;
            }
            Ended::Unknown(cause) => self.note_failure(what, &format!("(unknown) {cause}")),
            Ended::Answered(_) => {}
        }
        self.record(Operation {
            key,
            input,
            called,
            returned,
        });
    }

    fn note_failure(&self, what: &str, cause: &str) {
        let cause: String = cause.chars().take(100).collect();
        *self
            .failure_causes
            .lock()
            .unwrap()
            .entry(format!("{what}: {cause}"))
            .or_default() += 1;
    }

    fn done(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.recorded.load(Ordering::SeqCst) >= OPS_MAX
    }
}

/// A small deterministic generator per worker (no shared RNG state).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A `?consistent` read: `Some((value, modify_index))` when the key
/// exists, `None` when absent; `Err` when the outcome is unknown.
fn consistent_read(addr: SocketAddr, key: &str) -> Result<Option<(String, u64)>, String> {
    let r = http::request(
        addr,
        "GET",
        &format!("/v1/kv/{key}?consistent"),
        &[],
        b"",
        REQUEST_TIMEOUT,
    )
    .map_err(|e| e.to_string())?;
    match r.status {
        404 => Ok(None),
        200 => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| e.to_string())?;
            let entry = &body[0];
            let value = entry["Value"].as_str().ok_or("no Value")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|e| e.to_string())?;
            let index = entry["ModifyIndex"].as_u64().ok_or("no ModifyIndex")?;
            Ok(Some((String::from_utf8_lossy(&bytes).into_owned(), index)))
        }
        other => Err(format!("{other} {}", r.text())),
    }
}

/// How a request ended.
enum Ended<T> {
    /// The agent answered.
    Answered(T),
    /// Certainly without effect: the connection to the agent, or the
    /// agent's to the leader, was refused before the request was sent.
    Refused(String),
    /// May or may not have taken effect (a 500, a timeout, a cut).
    Unknown(String),
}

/// Classifies a failed request by its cause. A client agent that tried
/// several servers ("no server answered") may have reached one before the
/// refusal: unknown.
fn failed<T>(cause: String) -> Ended<T> {
    let refused = cause.contains("Connection refused") || cause.contains("connection refused");
    if refused && !cause.contains("no server answered") {
        Ended::Refused(cause)
    } else {
        Ended::Unknown(cause)
    }
}

/// A `PUT` (with `?cas=` when given): its boolean answer.
fn put(addr: SocketAddr, key: &str, value: &str, cas: Option<u64>) -> Ended<bool> {
    let target = match cas {
        Some(index) => format!("/v1/kv/{key}?cas={index}"),
        None => format!("/v1/kv/{key}"),
    };
    let r = match http::request(addr, "PUT", &target, &[], value.as_bytes(), REQUEST_TIMEOUT) {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    match (r.status, r.text().trim()) {
        (200, "true") => Ended::Answered(true),
        (200, "false") => Ended::Answered(false),
        (status, text) => failed(format!("{status} {text}")),
    }
}

/// One worker: random operations on random keys at random live agents.
/// After a failure it pauses longer, so an election does not fill the
/// history with failed operations.
fn worker(shared: &Shared, id: usize) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1000_0001));
    let mut serial = 0u64;
    let run_end = shared.started + RUN;
    while !shared.done() && Instant::now() < run_end {
        let live: Vec<SocketAddr> = shared
            .targets
            .iter()
            .filter(|(_, up)| up.load(Ordering::SeqCst))
            .map(|(addr, _)| *addr)
            .collect();
        if live.is_empty() {
            thread::sleep(PAUSE);
            continue;
        }
        let addr = live[rng.below(live.len())];
        let key = format!("k{}", rng.below(KEYS));
        serial += 1;
        let value = format!("w{id}-{serial}");
        let answered = match rng.below(20) {
            0..=7 => read_op(shared, addr, &key).is_some(),
            8..=14 => {
                let called = shared.now_ns();
                let ended = put(addr, &key, &value, None);
                let answered = matches!(ended, Ended::Answered(true));
                let returned = answered.then(|| (shared.now_ns(), Output::Write));
                shared.record_put(key.clone(), Input::Write(value), called, returned, ended, "write");
                // Read it back at once through another agent: a read that
                // starts after the write was acknowledged must see it (or a
                // later value), which a replica lagging by one round trip
                // would not.
                if answered && live.len() > 1 {
                    let other = live[(live.iter().position(|a| *a == addr).unwrap_or(0) + 1) % live.len()];
                    read_op(shared, other, &key);
                }
                answered
            }
            _ => match read_op(shared, addr, &key) {
                // Compare-and-set on what a consistent read just saw.
                Some(seen) => {
                    let (expected, index) = match seen {
                        Some((v, index)) => (Some(v), index),
                        None => (None, 0),
                    };
                    let called = shared.now_ns();
                    let ended = put(addr, &key, &value, Some(index));
                    let returned = match &ended {
                        Ended::Answered(swapped) => Some((shared.now_ns(), Output::Cas(*swapped))),
                        _ => None,
                    };
                    let answered = returned.is_some();
                    let input = Input::Cas { expected, new: value };
                    shared.record_put(key, input, called, returned, ended, "cas");
                    answered
                }
                None => false,
            },
        };
        thread::sleep(if answered { PAUSE } else { PAUSE_AFTER_FAILURE });
    }
}

/// Records one consistent read; answers what it saw (`None`: no answer,
/// and the read is left out of the history).
fn read_op(shared: &Shared, addr: SocketAddr, key: &str) -> Option<Option<(String, u64)>> {
    let called = shared.now_ns();
    match consistent_read(addr, key) {
        Ok(seen) => {
            let returned = Some((shared.now_ns(), Output::Read(seen.as_ref().map(|(v, _)| v.clone()))));
            shared.record(Operation {
                key: key.to_string(),
                input: Input::Read,
                called,
                returned,
            });
            Some(seen)
        }
        Err(e) => {
            shared.note_failure("read", &e);
            None
        }
    }
}

/// The index in `agents` of the server that leads now.
fn current_leader(agents: &[Agent], servers: usize) -> usize {
    let mut found = None;
    eventually("a leader among the servers", || {
        let leader = (0..servers)
            .find_map(|k| leader_of(&agents[k]))
            .ok_or("no leader known")?;
        let k = (0..servers)
            .find(|k| leader.starts_with(&format!("{}:", agents[*k].ip())))
            .ok_or(format!("leader {leader} is none of ours"))?;
        found = Some(k);
        Ok(())
    });
    found.expect("eventually returned")
}

/// Kills the leader, waits `down`, restarts it; returns its index.
fn kill_and_restart_leader(agents: &mut [Agent], shared: &Shared, servers: usize, down: Duration) -> usize {
    let k = current_leader(agents, servers);
    shared.targets[k].1.store(false, Ordering::SeqCst);
    kill_node(&mut agents[k]);
    thread::sleep(down);
    agents[k].respawn();
    shared.targets[k].1.store(true, Ordering::SeqCst);
    k
}

/// The operations on `key`, in invocation order, one per line.
fn render_key_history(history: &[Operation], key: &str) -> String {
    let mut ops: Vec<&Operation> = history.iter().filter(|o| o.key == key).collect();
    ops.sort_by_key(|o| o.called);
    ops.iter()
        .map(|o| {
            let returned = match &o.returned {
                Some((at, out)) => format!("{:>9.3} ms {out:?}", *at as f64 / 1e6),
                None => "unknown".to_string(),
            };
            format!("{:>9.3} ms {:?} -> {returned}", o.called as f64 / 1e6, o.input)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kv_history_under_leader_kills_is_linearizable() {
    let dir = TempDir::new().unwrap();
    let ips: Vec<Ipv4Addr> = (0..4).map(|_| fresh_loopback_ip()).collect();
    let servers = &ips[..3];
    let mut specs: Vec<_> = (0..3)
        .map(|i| server_spec(&dir, &format!("s{i}"), ips[i], 3, servers))
        .collect();
    specs.push(client_spec(&dir, "c0", ips[3], servers));
    let mut agents = start_all(specs);
    current_leader(&agents, 3);

    let shared = Arc::new(Shared {
        started: Instant::now(),
        targets: agents.iter().map(|a| (a.http_addr(), AtomicBool::new(true))).collect(),
        history: Mutex::new(Vec::new()),
        failure_causes: Mutex::new(BTreeMap::new()),
        recorded: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| {
            let shared = shared.clone();
            thread::spawn(move || worker(&shared, id))
        })
        .collect();

    // Two leader kills while the workers run, each restarted.
    thread::sleep(Duration::from_secs(3));
    let first = kill_and_restart_leader(&mut agents, &shared, 3, Duration::from_secs(2));
    let second = kill_and_restart_leader(&mut agents, &shared, 3, Duration::from_secs(2));
    let restarted_ns = shared.now_ns();
    for w in workers {
        w.join().expect("worker panicked");
    }
    let history = std::mem::take(&mut *shared.history.lock().unwrap());

    let answered = |pred: fn(&Output) -> bool| {
        history
            .iter()
            .filter(|o| o.returned.as_ref().is_some_and(|(_, out)| pred(out)))
            .count()
    };
    let reads = answered(|o| matches!(o, Output::Read(_)));
    let writes = answered(|o| matches!(o, Output::Write));
    let swaps = answered(|o| matches!(o, Output::Cas(true)));
    let unknown = history.iter().filter(|o| o.returned.is_none()).count();
    eprintln!(
        "history: {} operations ({reads} reads, {writes} writes, {swaps} successful CAS answered, {unknown} \
         unknown); leaders killed: servers {first} and {second}",
        history.len()
    );
    for (cause, count) in shared.failure_causes.lock().unwrap().iter() {
        eprintln!("  failed x{count}: {cause}");
    }
    assert!(
        reads >= 100 && writes >= 100 && swaps >= 10,
        "too little was answered to check anything"
    );
    let after_restarts = history.iter().filter(|o| o.called > restarted_ns).count();
    assert!(
        after_restarts >= 20,
        "only {after_restarts} operations ran after both kills: the history does not cover them"
    );

    match check_history(&history) {
        Verdict::Linearizable => {}
        Verdict::Violation { key, reason } => panic!(
            "NOT linearizable on {key}: {reason}\nits history:\n{}",
            render_key_history(&history, &key)
        ),
        Verdict::Unknown { key, reason } => panic!("the checker gave up on {key}: {reason}"),
    }
}
