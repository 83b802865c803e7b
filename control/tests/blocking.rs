//! Blocking queries on `/v1/kv` (spec BLOCKING.md §1–§5, SUMMARY.md item 5):
//! who wakes, who does not, timeouts and parameter parsing.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use common::http::Response;
use common::{Agent, AgentSpec};

/// Extra time a response may take on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(750);
/// Measurement noise allowed below the requested wait.
const EARLY_TOLERANCE: Duration = Duration::from_millis(50);
/// How long a test lets a watcher park before it makes the change.
const PARK_TIME: Duration = Duration::from_millis(400);
/// A wake-up must come well before a long wait would have expired.
const WAKE_DEADLINE: Duration = Duration::from_secs(5);

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

/// Runs a blocking GET and times it.
fn timed_get(agent: &Agent, target: &str, wait: Duration) -> (Response, Duration) {
    let start = Instant::now();
    let r = agent.request_timeout("GET", target, &[], b"", wait * 17 / 16 + Duration::from_secs(10));
    (r, start.elapsed())
}

/// Asserts that a timed-out blocking query took between `wait` and
/// `wait × 17/16 + SLACK`.
#[track_caller]
fn assert_timed_out_in_bounds(elapsed: Duration, wait: Duration) {
    assert!(
        elapsed + EARLY_TOLERANCE >= wait,
        "returned after {elapsed:?}, before the {wait:?} wait expired"
    );
    let max = wait * 17 / 16 + SLACK;
    assert!(elapsed <= max, "returned after {elapsed:?}, later than {max:?}");
}

fn value_of(r: &Response) -> Vec<u8> {
    let v = r.json()[0]["Value"].as_str().expect("Value").to_string();
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .expect("base64 Value")
}

#[test]
fn a_key_watcher_returns_on_its_change_with_a_larger_index() {
    let agent = dev();
    let index = agent.kv_put("watch/key", b"v1");
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/kv/watch/key?index={index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        thread::sleep(PARK_TIME);
        assert!(!watcher.is_finished(), "the blocking query returned before any change");
        let new_index = agent.kv_put("watch/key", b"v2");
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert!(r.index() > index, "woken with index {} <= {index}", r.index());
        assert_eq!(r.index(), new_index);
        assert_eq!(value_of(&r), b"v2", "the woken watcher sees the new value");
        assert!(elapsed < WAKE_DEADLINE, "woken only after {elapsed:?}");
    });
}

#[test]
fn a_key_watcher_is_not_woken_by_a_sibling() {
    let agent = dev();
    let index = agent.kv_put("sib/a", b"mine");
    let wait = Duration::from_secs(1);
    thread::scope(|s| {
        let watcher = s.spawn(|| timed_get(&agent, &format!("/v1/kv/sib/a?index={index}&wait=1s"), wait));
        thread::sleep(Duration::from_millis(200));
        // Same parent, same string prefix, and a key the watched key is a prefix of.
        agent.kv_put("sib/b", b"other");
        agent.kv_put("sib/a2", b"other");
        agent.kv_put("sib/a/child", b"other");
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert_eq!(r.index(), index, "a timed-out query answers the unchanged index");
        assert_eq!(value_of(&r), b"mine");
        assert_timed_out_in_bounds(elapsed, wait);
    });
}

#[test]
fn a_prefix_watcher_wakes_on_a_key_under_the_prefix_and_on_delete() {
    let agent = dev();
    agent.kv_put("pre/a", b"1");
    let index = agent.get("/v1/kv/pre/?recurse").index();
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/kv/pre/?recurse&index={index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        thread::sleep(PARK_TIME);
        assert!(!watcher.is_finished(), "returned before any change");
        let written = agent.kv_put("pre/deep/b", b"2");
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert_eq!(r.index(), written);
        assert_eq!(r.json().as_array().map(|a| a.len()), Some(2));
        assert!(elapsed < WAKE_DEADLINE, "woken only after {elapsed:?}");
    });

    let index = agent.get("/v1/kv/pre/?keys").index();
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/kv/pre/?keys&index={index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        thread::sleep(PARK_TIME);
        assert!(!watcher.is_finished(), "returned before any change");
        agent.delete("/v1/kv/pre/a").expect_status(200);
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert!(r.index() > index, "a delete raises the prefix index (tombstone)");
        assert_eq!(r.json(), serde_json::json!(["pre/deep/b"]));
        assert!(elapsed < WAKE_DEADLINE, "woken only after {elapsed:?}");
    });
}

#[test]
fn a_prefix_watcher_is_not_woken_outside_its_prefix() {
    let agent = dev();
    agent.kv_put("own/a", b"1");
    let index = agent.get("/v1/kv/own/?recurse").index();
    let wait = Duration::from_secs(1);
    thread::scope(|s| {
        let watcher = s.spawn(|| timed_get(&agent, &format!("/v1/kv/own/?recurse&index={index}&wait=1s"), wait));
        thread::sleep(Duration::from_millis(200));
        agent.kv_put("owner", b"x");
        agent.kv_put("other/a", b"x");
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert_eq!(r.index(), index);
        assert_timed_out_in_bounds(elapsed, wait);
    });
}

#[test]
fn a_missing_key_can_be_watched_and_wakes_when_created() {
    let agent = dev();
    agent.kv_put("unrelated", b"x");
    let r = agent.get("/v1/kv/later");
    r.expect_status(404);
    let index = r.index();
    thread::scope(|s| {
        let watcher = s.spawn(|| {
            timed_get(
                &agent,
                &format!("/v1/kv/later?index={index}&wait=30s"),
                Duration::from_secs(30),
            )
        });
        thread::sleep(PARK_TIME);
        assert!(!watcher.is_finished(), "returned before the key existed");
        let created = agent.kv_put("later", b"here");
        let (r, elapsed) = watcher.join().expect("watcher thread");
        r.expect_status(200);
        assert_eq!(r.index(), created);
        assert_eq!(value_of(&r), b"here");
        assert!(elapsed < WAKE_DEADLINE, "woken only after {elapsed:?}");
    });
}

#[test]
fn wait_accepts_go_durations_and_times_out_within_bounds() {
    let agent = dev();
    let index = agent.kv_put("dur", b"v");
    let cases = [
        ("1500ms", Duration::from_millis(1500)),
        ("1s", Duration::from_secs(1)),
        ("1.25s", Duration::from_millis(1250)),
    ];
    thread::scope(|s| {
        let watchers: Vec<_> = cases
            .iter()
            .map(|(text, wait)| {
                let agent = &agent;
                s.spawn(move || {
                    (
                        text,
                        *wait,
                        timed_get(agent, &format!("/v1/kv/dur?index={index}&wait={text}"), *wait),
                    )
                })
            })
            .collect();
        for w in watchers {
            let (text, wait, (r, elapsed)) = w.join().expect("watcher thread");
            r.expect_status(200);
            assert_eq!(r.index(), index, "wait={text}");
            assert_timed_out_in_bounds(elapsed, wait);
        }
    });
}

#[test]
fn an_index_ahead_of_the_data_blocks_until_the_wait_expires() {
    let agent = dev();
    let index = agent.kv_put("ahead", b"v");
    let wait = Duration::from_secs(1);
    let (r, elapsed) = timed_get(&agent, &format!("/v1/kv/ahead?index={}&wait=1s", index + 1000), wait);
    r.expect_status(200);
    assert_eq!(r.index(), index);
    assert_timed_out_in_bounds(elapsed, wait);
}

#[test]
fn index_zero_or_absent_answers_at_once() {
    let agent = dev();
    let index = agent.kv_put("now", b"v");
    for target in ["/v1/kv/now?index=0&wait=30s", "/v1/kv/now?wait=30s", "/v1/kv/now"] {
        let (r, elapsed) = timed_get(&agent, target, Duration::from_secs(30));
        r.expect_status(200);
        assert_eq!(r.index(), index);
        assert!(elapsed < Duration::from_secs(2), "{target} took {elapsed:?}");
    }
}

#[test]
fn a_stale_index_answers_at_once() {
    let agent = dev();
    let first = agent.kv_put("stale-idx", b"1");
    let second = agent.kv_put("stale-idx", b"2");
    let (r, elapsed) = timed_get(
        &agent,
        &format!("/v1/kv/stale-idx?index={first}&wait=30s"),
        Duration::from_secs(30),
    );
    r.expect_status(200);
    assert_eq!(r.index(), second);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn bad_index_or_wait_is_400_with_consuls_text() {
    let agent = dev();
    agent.kv_put("bad", b"v");
    for target in [
        "/v1/kv/bad?index=abc",
        "/v1/kv/bad?index=-1",
        "/v1/kv/bad?index=1.5",
        "/v1/kv/bad?index=18446744073709551616",
    ] {
        let r = agent.get(target);
        r.expect_status(400);
        assert_eq!(r.text().trim(), "Invalid index", "{target}");
    }
    for target in [
        "/v1/kv/bad?index=1&wait=abc",
        "/v1/kv/bad?index=1&wait=10",
        "/v1/kv/bad?index=1&wait=5x",
        "/v1/kv/bad?index=1&wait=-",
    ] {
        let r = agent.get(target);
        r.expect_status(400);
        assert_eq!(r.text().trim(), "Invalid wait time", "{target}");
    }
}

#[test]
fn one_write_wakes_every_watcher_of_the_key() {
    const WATCHERS: usize = 40;
    let agent = dev();
    let index = agent.kv_put("fan", b"0");
    thread::scope(|s| {
        let watchers: Vec<_> = (0..WATCHERS)
            .map(|_| {
                let agent = &agent;
                s.spawn(move || {
                    timed_get(
                        agent,
                        &format!("/v1/kv/fan?index={index}&wait=30s"),
                        Duration::from_secs(30),
                    )
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(800));
        assert!(
            watchers.iter().all(|w| !w.is_finished()),
            "a watcher returned before the change"
        );
        let written = agent.kv_put("fan", b"1");
        for w in watchers {
            let (r, elapsed) = w.join().expect("watcher thread");
            r.expect_status(200);
            assert_eq!(r.index(), written);
            assert!(elapsed < Duration::from_secs(10), "woken only after {elapsed:?}");
        }
    });
}
