//! `/v1/kv`: read shape, values, flags, `?raw`/`?keys`/`?recurse`, missing
//! keys, CAS, deletes, limits, bad input and headers (spec HTTP.md §1,
//! SUMMARY.md items 1–4 and 7).

mod common;

use base64::Engine;
use common::{Agent, AgentSpec};
use serde_json::{json, Value};

/// Go's `api.Lock` flag: larger than 2^53, so a float-based JSON path breaks it.
const LOCK_FLAG: u64 = 0x2ddc_cbc0_58a5_0c18;
/// Go's `api.Semaphore` flag.
const SEMAPHORE_FLAG: u64 = 0xe0f6_9a2b_aa41_4de0;
/// `limits.kv_max_value_size`.
const VALUE_BYTES_MAX: usize = 512 * 1024;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn dev() -> Agent {
    AgentSpec::dev().spawn()
}

/// Asserts that `fields` appear in this order in the raw JSON text.
#[track_caller]
fn assert_field_order(text: &str, fields: &[&str]) {
    let positions: Vec<usize> = fields
        .iter()
        .map(|f| {
            text.find(&format!("\"{f}\""))
                .unwrap_or_else(|| panic!("field {f} missing in {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields not in Consul order {fields:?}: {text}"
    );
}

#[test]
fn get_returns_a_one_element_array_in_consul_field_order() {
    let agent = dev();
    let index = agent.kv_put("shape/a", b"hello");
    let r = agent.get("/v1/kv/shape/a");
    r.expect_status(200);
    assert!(
        r.header("Content-Type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        r.header("Content-Type")
    );
    let body = r.json();
    let entries = body.as_array().expect("KV GET answers an array");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["Key"], "shape/a");
    assert_eq!(e["Value"], b64(b"hello"));
    assert_eq!(e["Flags"], 0);
    assert_eq!(e["LockIndex"], 0);
    assert_eq!(e["CreateIndex"], index);
    assert_eq!(e["ModifyIndex"], index);
    assert!(index >= 1);
    assert_eq!(r.index(), index, "X-Consul-Index of a key is its ModifyIndex");
    assert_field_order(
        &r.text(),
        &["LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"],
    );
}

#[test]
fn empty_value_is_null_and_session_is_omitted() {
    let agent = dev();
    agent.kv_put("empty", b"");
    let r = agent.get("/v1/kv/empty");
    r.expect_status(200);
    let e = &r.json()[0];
    assert_eq!(e["Value"], Value::Null, "an empty value is JSON null: {}", r.text());
    assert!(
        r.text().contains("\"Value\""),
        "Value is present (as null), not omitted"
    );
    assert!(
        e.get("Session").is_none(),
        "Session is omitted when the key is not locked: {}",
        r.text()
    );
}

#[test]
fn update_keeps_create_index_and_raises_modify_index() {
    let agent = dev();
    let first = agent.kv_put("upd", b"1");
    let second = agent.kv_put("upd", b"2");
    assert!(second > first);
    let e = &agent.get("/v1/kv/upd").json()[0];
    assert_eq!(e["CreateIndex"], first);
    assert_eq!(e["ModifyIndex"], second);
    assert_eq!(e["Value"], b64(b"2"));
}

#[test]
fn flags_round_trip_as_full_u64() {
    let agent = dev();
    for (key, flags) in [
        ("f/lock", LOCK_FLAG),
        ("f/sem", SEMAPHORE_FLAG),
        ("f/max", u64::MAX),
        ("f/one", 1),
    ] {
        let r = agent.put(&format!("/v1/kv/{key}?flags={flags}"), b"x");
        r.expect_status(200);
        let r = agent.get(&format!("/v1/kv/{key}"));
        r.expect_status(200);
        assert!(
            r.text().contains(&format!("\"Flags\":{flags}")) || r.text().contains(&format!("\"Flags\": {flags}")),
            "Flags {flags} not rendered exactly: {}",
            r.text()
        );
        assert_eq!(r.json()[0]["Flags"].as_u64(), Some(flags), "{}", r.text());
    }
    // A plain PUT without ?flags resets them to 0, as in Consul.
    agent.kv_put("f/lock", b"y");
    assert_eq!(agent.get("/v1/kv/f/lock").json()[0]["Flags"], 0);
}

#[test]
fn raw_returns_the_stored_bytes_as_text_plain() {
    let agent = dev();
    let value = b"line one\nline two\x00\xff\xfe tail";
    agent.kv_put("raw/k", value);
    let r = agent.get("/v1/kv/raw/k?raw");
    r.expect_status(200);
    assert_eq!(r.body, value.to_vec(), "?raw answers the bytes verbatim");
    assert!(
        r.header("Content-Type").is_some_and(|c| c.starts_with("text/plain")),
        "content type {:?}",
        r.header("Content-Type")
    );
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Content-Security-Policy"), Some("sandbox"));
    assert_eq!(r.index(), agent.kv_modify_index("raw/k"));
}

#[test]
fn values_are_stored_verbatim_not_decoded() {
    let agent = dev();
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(2048).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("verbatim/binary", &all_bytes),
        ("verbatim/json", br#"{"not":"decoded"}"#),
        ("verbatim/base64", b"aGVsbG8="),
        ("verbatim/nul", b"\x00\x00\x00"),
    ];
    for (key, value) in cases {
        agent.kv_put(key, value);
        let raw = agent.get(&format!("/v1/kv/{key}?raw"));
        raw.expect_status(200);
        assert_eq!(raw.body, value.to_vec(), "{key}: raw bytes differ");
        let json = agent.get(&format!("/v1/kv/{key}"));
        let encoded = json.json()[0]["Value"].as_str().expect("Value is a string").to_string();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .unwrap_or_else(|e| panic!("{key}: Value {encoded:?} is not standard padded base64: {e}"));
        assert_eq!(decoded, value.to_vec(), "{key}: base64 Value differs");
    }
}

#[test]
fn keys_lists_keys_under_a_prefix_and_separator_folds_folders() {
    let agent = dev();
    for key in ["web/a", "web/b", "web/sub/c", "web/sub/d", "webby", "other/x"] {
        agent.kv_put(key, b"v");
    }
    let r = agent.get("/v1/kv/web/?keys");
    r.expect_status(200);
    assert_eq!(r.json(), json!(["web/a", "web/b", "web/sub/c", "web/sub/d"]));
    let max = ["web/a", "web/b", "web/sub/c", "web/sub/d"]
        .iter()
        .map(|k| agent.kv_modify_index(k))
        .max()
        .unwrap();
    assert_eq!(
        r.index(),
        max,
        "?keys index is the highest ModifyIndex under the prefix"
    );

    let r = agent.get("/v1/kv/web/?keys&separator=/");
    r.expect_status(200);
    assert_eq!(r.json(), json!(["web/a", "web/b", "web/sub/"]));

    let r = agent.get("/v1/kv/web?keys&separator=/");
    r.expect_status(200);
    assert_eq!(
        r.json(),
        json!(["web/", "webby"]),
        "a prefix without a slash matches webby too"
    );

    let r = agent.get("/v1/kv/?keys&separator=/");
    r.expect_status(200);
    assert_eq!(r.json(), json!(["other/", "web/", "webby"]));

    let r = agent.get("/v1/kv/web/?keys&seperator=/");
    r.expect_status(200);
    assert_eq!(
        r.json(),
        json!(["web/a", "web/b", "web/sub/"]),
        "Consul also accepts the misspelt ?seperator"
    );
}

#[test]
fn keys_on_the_root_of_an_empty_store_is_an_empty_array_but_a_prefix_is_404() {
    let agent = dev();
    let r = agent.get("/v1/kv/?keys");
    r.expect_status(200);
    assert_eq!(r.json(), json!([]), "root ?keys on an empty store is [] (not null)");
    assert!(r.index() >= 1);

    agent.kv_put("present/k", b"v");
    let r = agent.get("/v1/kv/absent/?keys");
    r.expect_status(404);
    assert!(r.body.is_empty(), "404 has an empty body: {:?}", r.text());
    assert!(r.index() >= 1);
}

#[test]
fn recurse_returns_every_entry_under_the_prefix_and_is_presence_only() {
    let agent = dev();
    agent.kv_put("rec/a", b"1");
    agent.kv_put("rec/b/c", b"2");
    agent.kv_put("recx", b"3");
    for query in ["recurse", "recurse=true", "recurse=false", "recurse="] {
        let r = agent.get(&format!("/v1/kv/rec/?{query}"));
        r.expect_status(200);
        let keys: Vec<String> = r
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e["Key"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["rec/a", "rec/b/c"], "?{query} (flags are presence-only)");
    }
    let r = agent.get("/v1/kv/nothing-here/?recurse");
    r.expect_status(404);
    assert!(r.body.is_empty());
}

#[test]
fn missing_key_is_404_with_an_empty_body_and_index_headers() {
    let agent = dev();
    let r = agent.get("/v1/kv/does/not/exist");
    r.expect_status(404);
    assert!(r.body.is_empty(), "404 body must be empty: {:?}", r.text());
    assert!(r.index() >= 1, "X-Consul-Index is never 0");
    assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
    let last_contact = r.header("X-Consul-LastContact").expect("X-Consul-LastContact on a 404");
    last_contact
        .parse::<u64>()
        .unwrap_or_else(|e| panic!("LastContact {last_contact:?} is not integer ms: {e}"));

    // After writes and a delete, a missing key reports the KV table index,
    // which covers the delete (so a watcher can block on it).
    agent.kv_put("gone", b"v");
    let r = agent.delete("/v1/kv/gone");
    r.expect_status(200);
    let after_delete = agent.get("/v1/kv/gone");
    after_delete.expect_status(404);
    let written = agent.kv_put("other", b"v");
    let r = agent.get("/v1/kv/gone");
    r.expect_status(404);
    assert!(r.index() >= after_delete.index());
    assert_eq!(r.index(), written, "missing key reports the KV table's highest index");
}

#[test]
fn wire_header_names_use_gos_canonical_spelling() {
    let agent = dev();
    let r = agent.get("/v1/kv/missing");
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    for canonical in [
        "X-Consul-Index",
        "X-Consul-Knownleader",
        "X-Consul-Lastcontact",
        "X-Consul-Default-Acl-Policy",
    ] {
        assert!(
            names.contains(&canonical),
            "{canonical} not spelled as Go does in {names:?}"
        );
    }
}

#[test]
fn put_answers_the_json_literal_true() {
    let agent = dev();
    let r = agent.put("/v1/kv/lit", b"v");
    r.expect_status(200);
    assert_eq!(r.text().trim(), "true");
    assert!(r
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("application/json")));
}

#[test]
fn cas_zero_creates_only_when_absent() {
    let agent = dev();
    let r = agent.put("/v1/kv/cas0?cas=0", b"first");
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    let index = agent.kv_modify_index("cas0");
    let r = agent.put("/v1/kv/cas0?cas=0", b"second");
    r.expect_status(200);
    assert_eq!(r.json(), json!(false), "cas=0 on an existing key must not write");
    assert_eq!(agent.get("/v1/kv/cas0?raw").body, b"first");
    assert_eq!(
        agent.kv_modify_index("cas0"),
        index,
        "a failed CAS does not touch the key"
    );
}

#[test]
fn cas_n_writes_only_when_modify_index_matches() {
    let agent = dev();
    let index = agent.kv_put("casn", b"v1");
    let r = agent.put(&format!("/v1/kv/casn?cas={}", index + 1000), b"stale");
    r.expect_status(200);
    assert_eq!(r.json(), json!(false));
    let r = agent.put(&format!("/v1/kv/casn?cas={index}"), b"v2");
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    let e = &agent.get("/v1/kv/casn").json()[0];
    assert_eq!(e["Value"], b64(b"v2"));
    assert!(e["ModifyIndex"].as_u64().unwrap() > index);
    let r = agent.put(&format!("/v1/kv/casn?cas={index}"), b"v3");
    assert_eq!(r.json(), json!(false), "the old index is stale now");
    assert_eq!(agent.get("/v1/kv/casn?raw").body, b"v2");
}

#[test]
fn delete_with_cas_zero_never_deletes_and_cas_n_needs_the_modify_index() {
    let agent = dev();
    let index = agent.kv_put("dcas", b"v");
    let r = agent.delete("/v1/kv/dcas?cas=0");
    r.expect_status(200);
    assert_eq!(r.json(), json!(false), "DELETE ?cas=0 never deletes");
    agent.get("/v1/kv/dcas").expect_status(200);
    let r = agent.delete(&format!("/v1/kv/dcas?cas={}", index + 1));
    assert_eq!(r.json(), json!(false));
    agent.get("/v1/kv/dcas").expect_status(200);
    let r = agent.delete(&format!("/v1/kv/dcas?cas={index}"));
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    agent.get("/v1/kv/dcas").expect_status(404);
}

#[test]
fn recurse_delete_removes_the_prefix_only() {
    let agent = dev();
    for key in ["tree/a", "tree/b/c", "tree2", "treehouse/x"] {
        agent.kv_put(key, b"v");
    }
    let r = agent.delete("/v1/kv/tree/?recurse");
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    agent.get("/v1/kv/tree/a").expect_status(404);
    agent.get("/v1/kv/tree/b/c").expect_status(404);
    agent.get("/v1/kv/tree/?recurse").expect_status(404);
    agent.get("/v1/kv/tree2").expect_status(200);
    agent.get("/v1/kv/treehouse/x").expect_status(200);
}

#[test]
fn delete_of_a_missing_key_answers_true_and_plain_delete_removes_one_key() {
    let agent = dev();
    let r = agent.delete("/v1/kv/never-existed");
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    agent.kv_put("one", b"v");
    agent.kv_put("one/child", b"v");
    let r = agent.delete("/v1/kv/one");
    assert_eq!(r.json(), json!(true));
    agent.get("/v1/kv/one").expect_status(404);
    agent.get("/v1/kv/one/child").expect_status(200);
}

#[test]
fn root_recurse_delete_wipes_everything() {
    let agent = dev();
    agent.kv_put("x/1", b"v");
    agent.kv_put("y", b"v");
    let r = agent.delete("/v1/kv/?recurse");
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    let r = agent.get("/v1/kv/?keys");
    r.expect_status(200);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn value_over_512_kib_is_413_and_exactly_512_kib_is_accepted() {
    let agent = dev();
    let max = vec![b'm'; VALUE_BYTES_MAX];
    let r = agent.put("/v1/kv/big/max", &max);
    r.expect_status(200);
    assert_eq!(r.json(), json!(true));
    assert_eq!(agent.get("/v1/kv/big/max?raw").body.len(), VALUE_BYTES_MAX);

    let over = vec![b'o'; VALUE_BYTES_MAX + 1];
    let r = agent.put("/v1/kv/big/over", &over);
    r.expect_status(413);
    let text = r.text();
    assert!(
        text.contains("too large") && text.contains("524288"),
        "413 body names the limit: {text:?}"
    );
    agent.get("/v1/kv/big/over").expect_status(404);
    // The agent keeps serving after refusing a large body.
    agent.get("/v1/kv/big/max").expect_status(200);
}

#[test]
fn missing_key_name_is_400() {
    let agent = dev();
    for (method, target, body) in [
        ("GET", "/v1/kv/", ""),
        ("PUT", "/v1/kv/", "v"),
        ("DELETE", "/v1/kv/", ""),
    ] {
        let r = agent.request(method, target, &[], body.as_bytes());
        r.expect_status(400);
        assert_eq!(r.text().trim(), "Missing key name", "{method} {target}");
    }
}

#[test]
fn conflicting_flags_are_400_and_write_nothing() {
    let agent = dev();
    let r = agent.put("/v1/kv/conf?cas=0&acquire=abc", b"v");
    r.expect_status(400);
    assert!(r.text().starts_with("Conflicting flags"), "{:?}", r.text());
    let r = agent.put("/v1/kv/conf?acquire=abc&release=abc", b"v");
    r.expect_status(400);
    assert!(r.text().starts_with("Conflicting flags"), "{:?}", r.text());
    agent.kv_put("conf/a", b"v");
    let index = agent.kv_modify_index("conf/a");
    let r = agent.delete(&format!("/v1/kv/conf/?recurse&cas={index}"));
    r.expect_status(400);
    assert!(r.text().starts_with("Conflicting flags"), "{:?}", r.text());
    agent.get("/v1/kv/conf").expect_status(404);
    agent.get("/v1/kv/conf/a").expect_status(200);
}

#[test]
fn non_integer_flags_or_cas_are_rejected_without_writing() {
    let agent = dev();
    // Consul answers a strconv error with 500 (HTTP.md §1).
    for target in [
        "/v1/kv/bad?flags=abc",
        "/v1/kv/bad?flags=-1",
        "/v1/kv/bad?cas=xyz",
        "/v1/kv/bad?flags=18446744073709551616",
    ] {
        let r = agent.put(target, b"v");
        r.expect_status(500);
        assert!(!r.body.is_empty(), "{target}: the error says what failed");
    }
    agent.get("/v1/kv/bad").expect_status(404);
}

#[test]
fn acquire_with_an_unknown_session_is_an_error_and_writes_nothing() {
    let agent = dev();
    let session = "00000000-0000-0000-0000-000000000001";
    let r = agent.put(&format!("/v1/kv/locked?acquire={session}"), b"v");
    r.expect_status(500);
    assert!(
        r.text().to_lowercase().contains("session"),
        "the error names the session problem: {:?}",
        r.text()
    );
    agent.get("/v1/kv/locked").expect_status(404);

    // Release by a session that does not hold the key: Consul answers
    // `false`; an explicit session error is acceptable while sessions are
    // not implemented. Either way the key is untouched.
    let index = agent.kv_put("held", b"v");
    let r = agent.put(&format!("/v1/kv/held?release={session}"), b"changed");
    match r.status {
        200 => assert_eq!(r.json(), json!(false), "release without the lock answers false"),
        400..=599 => assert!(r.text().to_lowercase().contains("session"), "{:?}", r.text()),
        other => panic!("release answered {other}: {:?}", r.text()),
    }
    assert_eq!(agent.get("/v1/kv/held?raw").body, b"v");
    assert_eq!(agent.kv_modify_index("held"), index);
}

#[test]
fn default_acl_policy_header_is_on_every_response() {
    let agent = dev();
    agent.kv_put("acl/k", b"v");
    let too_big = vec![0u8; VALUE_BYTES_MAX + 1];
    let cases: Vec<(&str, &str, &[u8], u16)> = vec![
        ("GET", "/v1/kv/acl/k", b"", 200),
        ("GET", "/v1/kv/acl/missing", b"", 404),
        ("PUT", "/v1/kv/acl/k2", b"v", 200),
        ("DELETE", "/v1/kv/acl/k2", b"", 200),
        ("GET", "/v1/kv/", b"", 400),
        ("POST", "/v1/kv/acl/k", b"v", 405),
        ("PUT", "/v1/kv/acl/big", &too_big, 413),
        ("GET", "/v1/status/leader", b"", 200),
        ("GET", "/v1/not-an-endpoint", b"", 404),
    ];
    for (method, target, body, status) in cases {
        let r = agent.request(method, target, &[], body);
        assert_eq!(r.status, status, "{method} {target}: {:?}", r.text());
        assert_eq!(
            r.header("X-Consul-Default-ACL-Policy"),
            Some("allow"),
            "{method} {target} lacks X-Consul-Default-Acl-Policy: {:?}",
            r.headers
        );
    }
}

#[test]
fn index_headers_are_per_key_and_monotonic() {
    let agent = dev();
    let a1 = agent.kv_put("idx/a", b"1");
    let b1 = agent.kv_put("idx/b", b"1");
    assert!(b1 > a1, "each write gets a larger index");
    assert_eq!(
        agent.get("/v1/kv/idx/a").index(),
        a1,
        "a write to B does not move A's index"
    );
    assert_eq!(agent.get("/v1/kv/idx/b").index(), b1);
    let a2 = agent.kv_put("idx/a", b"2");
    assert!(a2 > b1);
    assert_eq!(
        agent.get("/v1/kv/idx/b").index(),
        b1,
        "a write to A does not move B's index"
    );
    assert_eq!(
        agent.get("/v1/kv/idx/?recurse").index(),
        a2,
        "prefix index is the max under it"
    );
    agent.kv_put("elsewhere", b"1");
    assert_eq!(
        agent.get("/v1/kv/idx/?recurse").index(),
        a2,
        "a write outside the prefix does not move it"
    );
    let r = agent.delete("/v1/kv/idx/b");
    r.expect_status(200);
    let after = agent.get("/v1/kv/idx/?recurse").index();
    assert!(after > a2, "a delete under the prefix raises its index (tombstone)");
    let mut previous = 0;
    for i in 0..10 {
        let index = agent.kv_put("idx/loop", i.to_string().as_bytes());
        assert!(index > previous, "index went from {previous} to {index}");
        previous = index;
    }
}

#[test]
fn effective_consistency_header_names_the_mode() {
    let agent = dev();
    agent.kv_put("mode", b"v");
    for (query, mode) in [("", "leader"), ("?stale", "stale"), ("?consistent", "consistent")] {
        let r = agent.get(&format!("/v1/kv/mode{query}"));
        r.expect_status(200);
        assert_eq!(
            r.header("X-Consul-Effective-Consistency"),
            Some(mode),
            "query {query:?}"
        );
        assert_eq!(r.header("X-Consul-KnownLeader"), Some("true"));
        assert!(r.header("X-Consul-LastContact").is_some());
    }
}

#[test]
fn url_encoded_keys_are_decoded() {
    let agent = dev();
    agent.put("/v1/kv/enc/hello%20world", b"v").expect_status(200);
    let r = agent.get("/v1/kv/enc/?keys");
    r.expect_status(200);
    assert_eq!(r.json(), json!(["enc/hello world"]));
    assert_eq!(agent.get("/v1/kv/enc/hello%20world?raw").body, b"v");
    let r = agent.get("/v1/kv/enc/hello%20world");
    assert_eq!(r.json()[0]["Key"], "enc/hello world");
}

#[test]
fn every_write_is_visible_to_the_next_read() {
    const WRITERS: usize = 4;
    const WRITES_PER_WRITER: usize = 100;
    let agent = dev();
    std::thread::scope(|s| {
        for writer in 0..WRITERS {
            let agent = &agent;
            s.spawn(move || {
                let key = format!("ryw/{writer}");
                let mut conn =
                    common::http::Conn::open(agent.http_addr(), common::http::RESPONSE_TIMEOUT).expect("connect");
                for i in 0..WRITES_PER_WRITER {
                    let value = format!("v{i}");
                    let r = conn
                        .exchange("PUT", &format!("/v1/kv/{key}"), &[], value.as_bytes())
                        .expect("PUT");
                    r.expect_status(200);
                    // Same connection, then a fresh one (possibly another
                    // serving core): both must see the write at once.
                    let r = conn
                        .exchange("GET", &format!("/v1/kv/{key}?raw"), &[], b"")
                        .expect("GET");
                    assert_eq!(r.text(), value, "{key}: read after write on the same connection");
                    let r = agent.get(&format!("/v1/kv/{key}?raw"));
                    assert_eq!(
                        (r.status, r.text()),
                        (200, value.clone()),
                        "{key}: read after write on a new connection"
                    );
                }
            });
        }
    });
}

#[test]
fn the_agents_datacenter_is_accepted_and_others_are_500() {
    let agent = dev();
    agent.kv_put("dc/k", b"v");
    agent.get("/v1/kv/dc/k?dc=dc1").expect_status(200);
    agent.put("/v1/kv/dc/k?dc=dc1", b"w").expect_status(200);
    for (method, body) in [("GET", ""), ("PUT", "x"), ("DELETE", "")] {
        let r = agent.request(method, "/v1/kv/dc/k?dc=elsewhere", &[], body.as_bytes());
        r.expect_status(500);
        assert_eq!(r.text().trim(), "No path to datacenter", "{method}");
    }
    assert_eq!(agent.get("/v1/kv/dc/k?raw").body, b"w");
}

#[test]
fn an_overlong_key_is_refused_with_a_reason() {
    let agent = dev();
    let key = "k".repeat(8 * 1024);
    let r = agent.put(&format!("/v1/kv/{key}"), b"v");
    assert!(
        (400..500).contains(&r.status) && !r.body.is_empty(),
        "an 8 KiB key answered {} {:?}",
        r.status,
        r.text()
    );
    let r = agent.get("/v1/kv/?keys");
    assert_eq!(r.json(), json!([]), "nothing was written");
    agent.get("/v1/status/leader").expect_status(200);
}
