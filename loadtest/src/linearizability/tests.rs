use super::*;

fn op(input: Input, called: u64, returned: Option<(u64, Output)>) -> Operation {
    Operation {
        key: "k".into(),
        input,
        called,
        returned,
    }
}

fn w(v: &str, c: u64, r: u64) -> Operation {
    op(Input::Write(v.into()), c, Some((r, Output::Write)))
}

fn rd(v: Option<&str>, c: u64, r: u64) -> Operation {
    op(Input::Read, c, Some((r, Output::Read(v.map(str::to_string)))))
}

fn cas(expected: Option<&str>, new: &str, ok: bool, c: u64, r: u64) -> Operation {
    op(
        Input::Cas {
            expected: expected.map(str::to_string),
            new: new.into(),
        },
        c,
        Some((r, Output::Cas(ok))),
    )
}

fn is_ok(ops: &[Operation]) -> bool {
    matches!(check_key(ops), Verdict::Linearizable)
}

#[test]
fn a_sequential_history_is_linearizable() {
    assert!(is_ok(&[
        rd(None, 0, 1),
        w("a", 2, 3),
        rd(Some("a"), 4, 5),
        w("b", 6, 7),
        rd(Some("b"), 8, 9)
    ]));
}

#[test]
fn a_stale_read_after_a_completed_write_is_a_violation() {
    let v = check_key(&[w("a", 0, 1), w("b", 2, 3), rd(Some("a"), 4, 5)]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
}

#[test]
fn a_read_overlapping_a_write_may_see_either_value() {
    assert!(is_ok(&[w("a", 0, 1), w("b", 2, 10), rd(Some("a"), 3, 4)]));
    assert!(is_ok(&[w("a", 0, 1), w("b", 2, 10), rd(Some("b"), 3, 4)]));
}

#[test]
fn reads_must_not_go_back_once_a_newer_value_was_seen() {
    // Both reads overlap the write, but once one saw "b" a later read
    // (called after it returned) cannot see "a" again.
    let v = check_key(&[w("a", 0, 1), w("b", 2, 20), rd(Some("b"), 3, 4), rd(Some("a"), 5, 6)]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
}

#[test]
fn cas_succeeds_only_from_the_expected_value() {
    assert!(is_ok(&[
        w("a", 0, 1),
        cas(Some("a"), "b", true, 2, 3),
        rd(Some("b"), 4, 5)
    ]));
    assert!(is_ok(&[
        w("a", 0, 1),
        cas(Some("x"), "b", false, 2, 3),
        rd(Some("a"), 4, 5)
    ]));
    let v = check_key(&[w("a", 0, 1), cas(Some("x"), "b", true, 2, 3)]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
    assert!(is_ok(&[
        cas(None, "first", true, 0, 1),
        cas(None, "second", false, 2, 3)
    ]));
}

#[test]
fn two_concurrent_cas_from_the_same_value_cannot_both_win() {
    let v = check_key(&[
        w("a", 0, 1),
        cas(Some("a"), "b", true, 2, 10),
        cas(Some("a"), "c", true, 3, 11),
    ]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
}

#[test]
fn an_unanswered_write_may_or_may_not_have_happened() {
    let lost = op(Input::Write("b".into()), 2, None);
    assert!(is_ok(&[w("a", 0, 1), lost.clone(), rd(Some("a"), 5, 6)]));
    assert!(is_ok(&[w("a", 0, 1), lost.clone(), rd(Some("b"), 5, 6)]));
    // ...but once seen it cannot disappear.
    let v = check_key(&[w("a", 0, 1), lost, rd(Some("b"), 5, 6), rd(Some("a"), 7, 8)]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
}

#[test]
fn an_acknowledged_write_that_vanished_is_a_violation() {
    let v = check_key(&[w("a", 0, 1), w("b", 2, 3), rd(None, 4, 5)]);
    assert!(matches!(v, Verdict::Violation { .. }), "{v:?}");
}

#[test]
fn keys_are_checked_independently() {
    let mut other = w("z", 0, 1);
    other.key = "other".into();
    let mut bad = rd(Some("q"), 2, 3);
    bad.key = "other".into();
    assert_eq!(
        check_history(&[w("a", 0, 1), rd(Some("a"), 2, 3), other.clone()]),
        Verdict::Linearizable
    );
    assert!(matches!(
        check_history(&[w("a", 0, 1), other, bad]),
        Verdict::Violation { key, .. } if key == "other"
    ));
}

#[test]
fn too_many_operations_on_one_key_is_unknown_not_a_guess() {
    let ops: Vec<Operation> = (0..=OPS_PER_KEY_MAX as u64)
        .map(|i| w(&format!("v{i}"), i * 2, i * 2 + 1))
        .collect();
    assert!(matches!(check_key(&ops), Verdict::Unknown { .. }));
}

#[test]
fn many_concurrent_writers_stay_tractable() {
    // 8 clients, 12 rounds of fully overlapping writes then a read of the
    // last round's last writer: memoization keeps this fast.
    let mut ops = Vec::new();
    let mut t = 0;
    for round in 0..12 {
        for c in 0..8 {
            ops.push(w(&format!("r{round}c{c}"), t + c, t + 100));
        }
        t += 200;
        ops.push(rd(Some(&format!("r{round}c7")), t, t + 1));
        t += 10;
    }
    assert!(is_ok(&ops));
}
