//! Sessions against the real binary (HTTP.md §5, SUMMARY.md item 11):
//! create with Consul's defaults and options, the list/info/node shapes,
//! renew and destroy, Consul's refusals, KV `acquire`/`release` (lock
//! index counting, another session refused), lock-delay, `delete`
//! behaviour, invalidation by a failing node or service check, TTL
//! expiry, blocking reads woken by a create, and the txn `lock`/`unlock`
//! verbs.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::http::Response;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

/// Bound on anything that should already be visible after a write answers
/// (check-driven invalidation is applied with the check's write).
const VISIBLE_WITHIN: Duration = Duration::from_secs(5);
/// Between two polls.
const POLL: Duration = Duration::from_millis(50);
/// Consul's default lock-delay, in nanoseconds.
const DEFAULT_LOCK_DELAY_NS: u64 = 15_000_000_000;

fn node_name(agent: &Agent) -> String {
    agent.get("/v1/agent/self").json()["Config"]["NodeName"]
        .as_str()
        .expect("NodeName")
        .to_string()
}

/// `PUT /v1/session/create` of `body` that must succeed; the new ID.
#[track_caller]
fn create(agent: &Agent, body: &Value) -> String {
    let r = agent.put("/v1/session/create", body.to_string().as_bytes());
    r.expect_status(200);
    let answer = r.json();
    let id = answer["ID"].as_str().unwrap_or_else(|| panic!("no ID in {answer}"));
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(answer.as_object().map(|o| o.len()), Some(1), "only the ID: {answer}");
    id.to_string()
}

/// `GET /v1/session/info/<id>`: the list it answers.
#[track_caller]
fn info(agent: &Agent, id: &str) -> Vec<Value> {
    let r = agent.get(&format!("/v1/session/info/{id}"));
    r.expect_status(200);
    r.json().as_array().cloned().expect("a list")
}

#[track_caller]
fn destroy(agent: &Agent, id: &str) {
    let r = agent.put(&format!("/v1/session/destroy/{id}"), b"");
    r.expect_status(200);
    assert_eq!(r.json(), Value::Bool(true), "destroy {id}");
}

/// `PUT /v1/kv/<key>?<verb>=<session>`: `true` or `false`.
#[track_caller]
fn kv_lock(agent: &Agent, key: &str, verb: &str, session: &str, value: &[u8]) -> bool {
    let r = agent.put(&format!("/v1/kv/{key}?{verb}={session}"), value);
    r.expect_status(200);
    r.json()
        .as_bool()
        .unwrap_or_else(|| panic!("{verb} {key}: {}", r.text()))
}

/// The key's one entry.
#[track_caller]
fn kv_entry(agent: &Agent, key: &str) -> Value {
    let r = agent.get(&format!("/v1/kv/{key}"));
    r.expect_status(200);
    r.json()[0].clone()
}

/// Polls `f` until it answers `Some`, at most `within`.
fn poll_until<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = f() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

#[track_caller]
fn expect_empty_list(r: &Response) {
    r.expect_status(200);
    assert_eq!(r.json(), json!([]));
}

#[track_caller]
fn expect_text(r: &Response, status: u16, text: &str) {
    assert_eq!((r.status, r.text().as_str()), (status, text), "headers {:?}", r.headers);
}

#[test]
fn create_with_defaults_then_list_info_node_renew_and_destroy() {
    let agent = AgentSpec::dev().spawn();
    let node = node_name(&agent);
    let empty = agent.get("/v1/session/list");
    expect_empty_list(&empty);
    assert!(empty.index() >= 1, "never index 0");

    let id = create(&agent, &json!({}));
    let listed = agent.get("/v1/session/list");
    listed.expect_status(200);
    let sessions = listed.json();
    let s = &sessions[0];
    let index = s["CreateIndex"].as_u64().expect("CreateIndex");
    assert_eq!(
        *s,
        json!({
            "ID": id, "Name": "", "Node": node, "LockDelay": DEFAULT_LOCK_DELAY_NS,
            "Behavior": "release", "TTL": "", "NodeChecks": ["serfHealth"], "ServiceChecks": null,
            "CreateIndex": index, "ModifyIndex": index,
        })
    );
    assert_eq!(listed.index(), index, "the sessions table's index");
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    let text = listed.text();
    let mut at = 0;
    for key in [
        "\"ID\"",
        "\"Name\"",
        "\"Node\"",
        "\"LockDelay\"",
        "\"Behavior\"",
        "\"TTL\"",
        "\"NodeChecks\"",
        "\"ServiceChecks\"",
        "\"CreateIndex\"",
        "\"ModifyIndex\"",
    ] {
        let found = text[at..]
            .find(key)
            .unwrap_or_else(|| panic!("{key} after byte {at} in {text}"));
        at += found + key.len();
    }
    assert_eq!(keys.len(), 10, "no other fields: {keys:?}");

    assert_eq!(info(&agent, &id), std::slice::from_ref(s));
    let by_node = agent.get(&format!("/v1/session/node/{node}"));
    assert_eq!(by_node.json(), json!([s.clone()]));
    expect_empty_list(&agent.get("/v1/session/node/ghost"));
    let missing = agent.get("/v1/session/info/00000000-0000-0000-0000-000000000000");
    expect_empty_list(&missing);
    assert_eq!(missing.index(), index);
    expect_text(&agent.get("/v1/session/info/"), 400, "Missing session");
    expect_text(&agent.get("/v1/session/node/"), 400, "Missing node name");

    let renewed = agent.put(&format!("/v1/session/renew/{id}"), b"");
    renewed.expect_status(200);
    assert_eq!(renewed.json()[0]["ID"], id.as_str());
    assert_eq!(renewed.json().as_array().map(Vec::len), Some(1));
    let ghost = "11111111-2222-3333-4444-555555555555";
    let r = agent.put(&format!("/v1/session/renew/{ghost}"), b"");
    expect_text(&r, 404, &format!("Session id '{ghost}' not found"));

    destroy(&agent, &id);
    assert!(info(&agent, &id).is_empty(), "destroyed");
    let after = agent.get("/v1/session/list");
    expect_empty_list(&after);
    assert!(after.index() > index, "a destroy raises the table index");
    destroy(&agent, &id);
    destroy(&agent, ghost);
}

#[test]
fn create_options_name_ttl_behavior_lock_delay_and_lower_case_keys() {
    let agent = AgentSpec::dev().spawn();
    let id = create(
        &agent,
        &json!({"Name": "web-lock", "TTL": "30s", "Behavior": "delete", "LockDelay": "5s"}),
    );
    let s = &info(&agent, &id)[0];
    assert_eq!(
        (&s["Name"], &s["TTL"], &s["Behavior"], &s["LockDelay"]),
        (
            &json!("web-lock"),
            &json!("30s"),
            &json!("delete"),
            &json!(5_000_000_000u64)
        )
    );
    // A bare number under 1000 is seconds (Consul's lock-delay fix-up).
    let id = create(&agent, &json!({"LockDelay": 7}));
    assert_eq!(info(&agent, &id)[0]["LockDelay"], 7_000_000_000u64);
    // py-consul sends lower-case keys.
    let id = create(&agent, &json!({"name": "py", "ttl": "20s", "lockdelay": "0s"}));
    let s = &info(&agent, &id)[0];
    assert_eq!(
        (&s["Name"], &s["TTL"], &s["LockDelay"]),
        (&json!("py"), &json!("20s"), &json!(0))
    );
    let renewed = agent.put(&format!("/v1/session/renew/{id}"), b"");
    renewed.expect_status(200);
    assert_eq!(renewed.json()[0]["TTL"], "20s");
}

#[test]
fn create_refusals_have_consuls_status_and_text() {
    let agent = AgentSpec::dev().spawn();
    let cases: [(Value, u16, &str); 6] = [
        (json!({"Node": "ghost"}), 500, "Missing node registration"),
        (
            json!({"NodeChecks": ["serfHealth", "nope"]}),
            500,
            "Missing check 'nope' registration",
        ),
        (
            json!({"TTL": "5s"}),
            500,
            "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]",
        ),
        (
            json!({"TTL": "soon"}),
            500,
            "Session TTL 'soon' invalid: time: invalid duration \"soon\"",
        ),
        (
            json!({"TTL": "25h"}),
            500,
            "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]",
        ),
        (
            json!({"Behavior": "explode"}),
            500,
            "Invalid Behavior setting 'explode'",
        ),
    ];
    for (body, status, text) in cases {
        let r = agent.put("/v1/session/create", body.to_string().as_bytes());
        expect_text(&r, status, text);
    }
    // A TTL check starts critical: a session cannot depend on it yet.
    let r = agent.put("/v1/agent/check/register", br#"{"Name":"lock-check","TTL":"60s"}"#);
    r.expect_status(200);
    let r = agent.put("/v1/session/create", br#"{"NodeChecks":["serfHealth","lock-check"]}"#);
    expect_text(&r, 500, "Check 'lock-check' is in critical state");
    let r = agent.put("/v1/session/create", b"{not json");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().starts_with("Request decode failed: "), "{}", r.text());
    expect_empty_list(&agent.get("/v1/session/list"));
}

#[test]
fn routing_methods_and_unknown_paths() {
    let agent = AgentSpec::dev().spawn();
    for (method, path, allow) in [
        ("GET", "/v1/session/create", "OPTIONS,PUT"),
        ("POST", "/v1/session/destroy/x", "OPTIONS,PUT"),
        ("GET", "/v1/session/renew/x", "OPTIONS,PUT"),
        ("PUT", "/v1/session/list", "OPTIONS,GET"),
        ("DELETE", "/v1/session/info/x", "OPTIONS,GET"),
        ("PUT", "/v1/session/node/x", "OPTIONS,GET"),
    ] {
        let r = agent.request(method, path, &[], b"");
        expect_text(&r, 405, &format!("method {method} not allowed"));
        assert_eq!(r.header("Allow"), Some(allow), "{method} {path}");
    }
    let r = agent.get("/v1/session/nope");
    expect_text(&r, 404, "Invalid URL path: not a recognized HTTP API endpoint");
    let r = agent.get("/v1/session/list?stale&consistent");
    expect_text(
        &r,
        400,
        "Cannot specify ?stale with ?consistent, conflicting semantics.",
    );
    for (query, consistency) in [("", "leader"), ("?stale", "stale"), ("?consistent", "consistent")] {
        let r = agent.get(&format!("/v1/session/list{query}"));
        r.expect_status(200);
        assert_eq!(r.header("X-Consul-Effective-Consistency"), Some(consistency), "{query}");
        assert_eq!(r.header("X-Consul-Knownleader"), Some("true"), "{query}");
    }
    create(&agent, &json!({}));
    let pretty = agent.get("/v1/session/list?pretty").text();
    assert!(pretty.starts_with("[\n    {\n        \"ID\": "), "{pretty}");
}

#[test]
fn acquire_and_release_count_lock_index_and_refuse_other_sessions() {
    let agent = AgentSpec::dev().spawn();
    let a = create(&agent, &json!({}));
    let b = create(&agent, &json!({}));
    assert!(kv_lock(&agent, "locks/one", "acquire", &a, b"by-a"));
    let e = kv_entry(&agent, "locks/one");
    assert_eq!((&e["Session"], &e["LockIndex"]), (&json!(a), &json!(1)));
    assert_eq!(e["Value"], "YnktYQ==", "the value is written with the lock");
    assert!(!kv_lock(&agent, "locks/one", "acquire", &b, b"by-b"), "held by a");
    assert_eq!(
        kv_entry(&agent, "locks/one")["Value"],
        "YnktYQ==",
        "a refused acquire writes nothing"
    );
    assert!(
        kv_lock(&agent, "locks/one", "acquire", &a, b"again"),
        "the holder re-acquires"
    );
    assert_eq!(
        kv_entry(&agent, "locks/one")["LockIndex"],
        1,
        "re-acquiring does not count"
    );
    assert!(!kv_lock(&agent, "locks/one", "release", &b, b""), "b does not hold it");
    assert!(kv_lock(&agent, "locks/one", "release", &a, b"free"));
    let e = kv_entry(&agent, "locks/one");
    assert!(e.get("Session").is_none(), "Session omitted when unlocked: {e}");
    assert_eq!(e["LockIndex"], 1, "a release keeps the lock index");
    assert!(kv_lock(&agent, "locks/one", "acquire", &b, b"by-b"));
    let e = kv_entry(&agent, "locks/one");
    assert_eq!((&e["Session"], &e["LockIndex"]), (&json!(b), &json!(2)));

    let ghost = "11111111-2222-3333-4444-555555555555";
    let r = agent.put(&format!("/v1/kv/locks/two?acquire={ghost}"), b"x");
    expect_text(&r, 500, &format!("invalid session \"{ghost}\""));
    let r = agent.put(&format!("/v1/kv/locks/two?acquire={a}&release={a}"), b"x");
    assert_eq!(r.status, 400, "conflicting flags: {}", r.text());
}

#[test]
fn lock_delay_holds_keys_after_destroy_and_zero_means_none() {
    let agent = AgentSpec::dev().spawn();
    let delay = Duration::from_secs(2);
    let a = create(&agent, &json!({"LockDelay": "2s"}));
    let b = create(&agent, &json!({}));
    assert!(kv_lock(&agent, "delayed", "acquire", &a, b"a"));
    destroy(&agent, &a);
    let destroyed_at = Instant::now();
    let e = kv_entry(&agent, "delayed");
    assert!(e.get("Session").is_none(), "released on destroy: {e}");
    assert!(
        !kv_lock(&agent, "delayed", "acquire", &b, b"b"),
        "inside the lock-delay"
    );
    let acquired = poll_until(delay + VISIBLE_WITHIN, || {
        kv_lock(&agent, "delayed", "acquire", &b, b"b").then(Instant::now)
    })
    .expect("acquired once the lock-delay passed");
    let waited = acquired - destroyed_at;
    assert!(
        waited >= delay - Duration::from_millis(100),
        "the lock-delay was honoured: {waited:?}"
    );
    assert_eq!(kv_entry(&agent, "delayed")["LockIndex"], 2);

    let c = create(&agent, &json!({"LockDelay": "0s"}));
    assert!(kv_lock(&agent, "undelayed", "acquire", &c, b"c"));
    destroy(&agent, &c);
    assert!(kv_lock(&agent, "undelayed", "acquire", &b, b"b"), "no lock-delay at 0");
}

#[test]
fn behavior_delete_removes_held_keys_on_destroy() {
    let agent = AgentSpec::dev().spawn();
    let s = create(&agent, &json!({"Behavior": "delete", "LockDelay": "0s"}));
    assert!(kv_lock(&agent, "ephemeral/a", "acquire", &s, b"1"));
    assert!(kv_lock(&agent, "ephemeral/b", "acquire", &s, b"2"));
    agent.kv_put("ephemeral/c", b"unlocked");
    destroy(&agent, &s);
    assert_eq!(agent.get("/v1/kv/ephemeral/a").status, 404);
    assert_eq!(agent.get("/v1/kv/ephemeral/b").status, 404);
    assert_eq!(agent.get("/v1/kv/ephemeral/c").status, 200, "keys it did not hold stay");
}

#[test]
fn a_failing_node_or_service_check_invalidates_the_session() {
    let agent = AgentSpec::dev().spawn();
    let r = agent.put("/v1/agent/check/register", br#"{"Name":"lock-check","TTL":"60s"}"#);
    r.expect_status(200);
    agent.put("/v1/agent/check/pass/lock-check", b"").expect_status(200);
    let by_node_check = create(
        &agent,
        &json!({"NodeChecks": ["serfHealth", "lock-check"], "LockDelay": "0s"}),
    );
    assert_eq!(
        info(&agent, &by_node_check)[0]["NodeChecks"],
        json!(["serfHealth", "lock-check"])
    );
    assert!(kv_lock(&agent, "guarded/node", "acquire", &by_node_check, b"n"));

    let service = br#"{"Name":"locksvc","Check":{"CheckID":"svc-lock","TTL":"60s"}}"#;
    agent.put("/v1/agent/service/register", service).expect_status(200);
    agent.put("/v1/agent/check/pass/svc-lock", b"").expect_status(200);
    let by_service_check = create(
        &agent,
        &json!({"NodeChecks": [], "ServiceChecks": [{"ID": "svc-lock"}], "LockDelay": "0s"}),
    );
    assert_eq!(
        info(&agent, &by_service_check)[0]["ServiceChecks"],
        json!([{"ID": "svc-lock", "Namespace": ""}])
    );
    assert!(kv_lock(&agent, "guarded/svc", "acquire", &by_service_check, b"s"));
    let untouched = create(&agent, &json!({}));

    agent.put("/v1/agent/check/fail/lock-check", b"").expect_status(200);
    poll_until(VISIBLE_WITHIN, || info(&agent, &by_node_check).is_empty().then_some(()))
        .expect("the node check's session was invalidated");
    assert!(
        kv_entry(&agent, "guarded/node").get("Session").is_none(),
        "and its lock released"
    );
    assert_eq!(
        info(&agent, &by_service_check).len(),
        1,
        "the other check's session lives"
    );

    agent.put("/v1/agent/check/fail/svc-lock", b"").expect_status(200);
    poll_until(VISIBLE_WITHIN, || {
        info(&agent, &by_service_check).is_empty().then_some(())
    })
    .expect("the service check's session was invalidated");
    let e = kv_entry(&agent, "guarded/svc");
    assert!(e.get("Session").is_none(), "lock released: {e}");
    assert_eq!(e["Value"], "cw==", "release keeps the key");
    assert_eq!(info(&agent, &untouched).len(), 1, "serfHealth still passes");
}

/// One TTL session (TTL 10 s, the shortest Consul takes, so one test for
/// both): a renewal pushes its expiry past the deadline it had at
/// creation; once renewals stop it expires within 2 x TTL of the last one,
/// releasing its key, which then stays under the session's lock-delay.
#[test]
fn ttl_renewal_pushes_back_expiry_and_an_expired_sessions_keys_keep_its_lock_delay() {
    let agent = AgentSpec::dev().spawn();
    let ttl = Duration::from_secs(10);
    let lock_delay = Duration::from_secs(3);
    // What our timers give a TTL session: 2 x TTL after its last renewal.
    let lifetime = 2 * ttl;
    let created_at = Instant::now();
    let s = create(&agent, &json!({"TTL": "10s", "LockDelay": "3s"}));
    let other = create(&agent, &json!({"LockDelay": "0s"}));
    assert!(kv_lock(&agent, "ttl/lock", "acquire", &s, b"t"));

    // Renew 8 s in: the deadline moves from ~20 s to ~28 s after creation.
    thread::sleep(Duration::from_secs(8).saturating_sub(created_at.elapsed()));
    let renewed_at = Instant::now();
    let r = agent.put(&format!("/v1/session/renew/{s}"), b"");
    r.expect_status(200);
    assert_eq!(r.json()[0]["ID"], s.as_str(), "renew answers the session");

    // Past the creation deadline (plus the driver's slack) it is alive.
    let past_first_deadline = lifetime + Duration::from_millis(1500);
    thread::sleep(past_first_deadline.saturating_sub(created_at.elapsed()));
    assert_eq!(
        info(&agent, &s).len(),
        1,
        "renewed at {:?}, alive {:?} after creation",
        renewed_at - created_at,
        created_at.elapsed()
    );
    assert_eq!(
        kv_entry(&agent, "ttl/lock")["Session"],
        s.as_str(),
        "still holds its key"
    );

    let gone_at = poll_until(lifetime + VISIBLE_WITHIN, || {
        info(&agent, &s).is_empty().then(Instant::now)
    })
    .expect("the session expired once renewals stopped");
    let lived_after_renewal = gone_at - renewed_at;
    assert!(
        lived_after_renewal >= ttl - Duration::from_millis(100),
        "not before a TTL after its renewal: {lived_after_renewal:?}"
    );
    let e = kv_entry(&agent, "ttl/lock");
    assert!(e.get("Session").is_none(), "its lock was released: {e}");

    // The expiry invalidation starts the session's lock-delay on its key.
    assert!(
        !kv_lock(&agent, "ttl/lock", "acquire", &other, b"o"),
        "another session cannot take the key inside the lock-delay"
    );
    let acquired_at = poll_until(lock_delay + VISIBLE_WITHIN, || {
        kv_lock(&agent, "ttl/lock", "acquire", &other, b"o").then(Instant::now)
    })
    .expect("acquired once the lock-delay passed");
    // The delay began when the destroy applied, at most one poll before
    // it was seen.
    let waited = acquired_at - gone_at;
    assert!(
        waited >= lock_delay - POLL - Duration::from_millis(100),
        "the lock-delay was honoured: {waited:?}"
    );
    assert_eq!(kv_entry(&agent, "ttl/lock")["LockIndex"], 2);
    assert_eq!(info(&agent, &other).len(), 1, "a session without TTL stays");
    let r = agent.put(&format!("/v1/session/renew/{s}"), b"");
    expect_text(&r, 404, &format!("Session id '{s}' not found"));
}

#[test]
fn blocking_list_parks_and_wakes_on_a_create() {
    let agent = AgentSpec::dev().spawn();
    let first = create(&agent, &json!({}));
    let index = agent.get("/v1/session/list").index();
    let second = thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let started = Instant::now();
            let r = agent.get(&format!("/v1/session/list?index={index}&wait=5s"));
            (r, started.elapsed())
        });
        thread::sleep(Duration::from_millis(300));
        let second = create(&agent, &json!({"Name": "wakes"}));
        let (r, waited) = waiter.join().expect("the waiter");
        r.expect_status(200);
        assert!(r.index() > index, "woken with a newer index");
        assert!(waited >= Duration::from_millis(250), "it parked: {waited:?}");
        assert!(waited < Duration::from_secs(4), "woken by the create: {waited:?}");
        let ids: Vec<Value> = r.json().as_array().unwrap().iter().map(|s| s["ID"].clone()).collect();
        assert!(ids.contains(&json!(first)) && ids.contains(&json!(second)), "{ids:?}");
        second
    });
    // Nothing changes: the wait runs out and the index is unchanged.
    let index = agent.get(&format!("/v1/session/info/{second}")).index();
    let started = Instant::now();
    let r = agent.get(&format!("/v1/session/info/{second}?index={index}&wait=1s"));
    let waited = started.elapsed();
    assert_eq!(r.index(), index);
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited <= Duration::from_millis(1900), "{waited:?}");
    // A KV write does not wake a session watcher; a destroy does.
    let r = thread::scope(|scope| {
        let waiter =
            scope.spawn(|| agent.get(&format!("/v1/session/node/{}?index={index}&wait=5s", node_name(&agent))));
        thread::sleep(Duration::from_millis(300));
        agent.kv_put("unrelated", b"v");
        thread::sleep(Duration::from_millis(300));
        destroy(&agent, &first);
        waiter.join().expect("the waiter")
    });
    assert!(r.index() > index);
    assert_eq!(
        r.json().as_array().map(Vec::len),
        Some(1),
        "only the second session left"
    );
}

#[test]
fn txn_lock_and_unlock_verbs() {
    let agent = AgentSpec::dev().spawn();
    let a = create(&agent, &json!({"LockDelay": "0s"}));
    let b = create(&agent, &json!({}));
    let txn = |verb: &str, session: &str| {
        let body = json!([{"KV": {"Verb": verb, "Key": "txn/lock", "Value": "dmFs", "Session": session}}]);
        agent.put("/v1/txn", body.to_string().as_bytes())
    };
    let r = txn("lock", &a);
    r.expect_status(200);
    let kv = &r.json()["Results"][0]["KV"];
    assert_eq!((&kv["Session"], &kv["LockIndex"]), (&json!(a), &json!(1)), "{kv}");
    assert_eq!(kv_entry(&agent, "txn/lock")["Session"], a.as_str());

    let r = txn("lock", &b);
    r.expect_status(409);
    assert_eq!(
        r.json(),
        json!({"Results": null, "Errors": [{"OpIndex": 0, "What": "failed to lock key \"txn/lock\", lock is already held"}]})
    );
    let r = txn("unlock", &b);
    r.expect_status(409);
    assert_eq!(
        r.json()["Errors"][0]["What"],
        "failed to unlock key \"txn/lock\", lock isn't held, or is held by another session"
    );
    let r = txn("unlock", &a);
    r.expect_status(200);
    assert!(r.json()["Results"][0]["KV"].get("Session").is_none(), "{}", r.text());
    assert!(kv_entry(&agent, "txn/lock").get("Session").is_none());
    let r = txn("lock", &b);
    r.expect_status(200);
    assert_eq!(r.json()["Results"][0]["KV"]["LockIndex"], 2);
}

/// A prepared query may name a live session (an unknown one is refused
/// with Consul's text) and is deleted when that session is invalidated.
#[test]
fn a_prepared_query_bound_to_a_session_goes_with_it() {
    let agent = AgentSpec::dev().spawn();
    let unknown = "00000000-0000-0000-0000-000000000001";
    let r = agent.request(
        "POST",
        "/v1/query",
        &[],
        json!({"Name": "bound", "Session": unknown, "Service": {"Service": "web"}})
            .to_string()
            .as_bytes(),
    );
    expect_text(&r, 500, &format!("invalid session \"{unknown}\""));

    let s = create(&agent, &json!({"LockDelay": "0s"}));
    let posted = |name: &str, session: &str| {
        let r = agent.request(
            "POST",
            "/v1/query",
            &[],
            json!({"Name": name, "Session": session, "Service": {"Service": "web"}})
                .to_string()
                .as_bytes(),
        );
        r.expect_status(200);
        r.json()["ID"].as_str().expect("an ID").to_string()
    };
    let bound = posted("bound", &s);
    let free = posted("free", "");
    let got = agent.get(&format!("/v1/query/{bound}"));
    got.expect_status(200);
    assert_eq!(got.json()[0]["Session"], s.as_str());

    // An update may not bind it to an unknown session either.
    let r = agent.put(
        &format!("/v1/query/{free}"),
        json!({"Name": "free", "Session": unknown, "Service": {"Service": "web"}})
            .to_string()
            .as_bytes(),
    );
    expect_text(&r, 500, &format!("invalid session \"{unknown}\""));

    destroy(&agent, &s);
    assert_eq!(
        agent.get(&format!("/v1/query/{bound}")).status,
        404,
        "the bound query went with its session"
    );
    let left: Vec<Value> = agent.get("/v1/query").json().as_array().cloned().expect("a list");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["ID"], free.as_str());
}
