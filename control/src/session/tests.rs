//! The session runtime driven by real state-machine applies and a fake
//! clock: TTL expiry at 2 × TTL, renewals, re-arming on leadership, and
//! lock-delay after destroys and check failures.

use proconsul_shared::command::{CatalogRegistration, Command, CommandResult};
use proconsul_shared::state::{CheckStatus, HealthCheck, Session, SessionBehavior, State};
use proconsul_shared::test_fixtures::{node_registration, serf_health_passing};

use super::*;

const S1: &str = "11111111-1111-1111-1111-111111111111";
const S2: &str = "22222222-2222-2222-2222-222222222222";

fn serf(status: CheckStatus) -> Command {
    serf_on("n1", "10.0.0.1", status)
}

/// Registers `node` at `address` with its `serfHealth` at `status`.
fn serf_on(node: &str, address: &str, status: CheckStatus) -> Command {
    Command::CatalogRegister(CatalogRegistration {
        checks: vec![HealthCheck {
            name: "Serf Health Status".into(),
            status,
            ..serf_health_passing()
        }],
        ..node_registration(node, address)
    })
}

fn session(id: &str, ttl: &str, lock_delay_ns: u64) -> Session {
    Session {
        id: id.into(),
        name: String::new(),
        node: "n1".into(),
        lock_delay_ns,
        behavior: SessionBehavior::Release,
        ttl: ttl.into(),
        node_checks: vec!["serfHealth".into()],
        service_checks: Vec::new(),
        create_index: 0,
        modify_index: 0,
    }
}

/// A state machine plus the runtime that follows it, as on one server.
struct Server {
    state: State,
    index: u64,
    rt: SessionRuntime,
}

impl Server {
    fn new() -> Server {
        let mut s = Server {
            state: State::default(),
            index: 0,
            rt: SessionRuntime::new(),
        };
        s.apply(0, serf(CheckStatus::Passing));
        s
    }

    fn apply(&mut self, now_ms: u64, command: Command) -> CommandResult {
        self.index += 1;
        let before = SessionRuntime::needs_state_before(&command).then(|| self.state.clone());
        let (result, _) = self.state.apply_command(self.index, &command);
        let states = before.as_ref().map(|b| (b, &self.state));
        self.rt.observe_at(now_ms, &command, &result, states);
        result
    }
}

#[test]
fn ttl_parsing() {
    assert_eq!(ttl_ms(&session(S1, "", 0)), None);
    assert_eq!(ttl_ms(&session(S1, "0s", 0)), None);
    assert_eq!(ttl_ms(&session(S1, "15s", 0)), Some(15_000));
    assert_eq!(ttl_ms(&session(S1, "1m30s", 0)), Some(90_000));
}

#[test]
fn a_ttl_session_expires_after_twice_its_ttl_on_the_leader_only() {
    let mut server = Server::new();
    assert_eq!(
        server.apply(1_000, Command::SessionCreate(session(S1, "10s", 0))),
        CommandResult::Done
    );
    server.apply(1_000, Command::SessionCreate(session(S2, "", 0)));
    assert_eq!(server.rt.ttl_deadline_ms(S1), Some(21_000));
    assert_eq!(server.rt.ttl_deadline_ms(S2), None, "no TTL, no timer");
    // Leadership from the start, re-arming at 1 000 (same deadline).
    let first = server.rt.tick_at(1_000, true, &server.state);
    assert_eq!(first.rearmed, 1);
    assert!(server.rt.tick_at(20_999, true, &server.state).expired.is_empty());
    assert_eq!(
        server.rt.tick_at(21_000, true, &server.state).expired,
        vec![S1.to_string()]
    );
    // The driver proposes the destroy; its apply disarms the timer.
    server.apply(21_010, Command::SessionDestroy { id: S1.into() });
    assert_eq!(server.rt.ttl_deadline_ms(S1), None);
    assert!(server.rt.tick_at(100_000, true, &server.state).expired.is_empty());
}

#[test]
fn a_follower_reports_nothing() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "10s", 0)));
    assert!(server.rt.tick_at(1_000_000, false, &server.state).expired.is_empty());
}

#[test]
fn renew_pushes_the_deadline_out() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "10s", 0)));
    server.rt.tick_at(0, true, &server.state);
    assert_eq!(
        server.apply(15_000, Command::SessionRenew { id: S1.into() }),
        CommandResult::Bool(true)
    );
    assert_eq!(server.rt.ttl_deadline_ms(S1), Some(35_000));
    assert!(server.rt.tick_at(34_000, true, &server.state).expired.is_empty());
    assert_eq!(
        server.rt.tick_at(35_000, true, &server.state).expired,
        vec![S1.to_string()]
    );
}

#[test]
fn gaining_leadership_rearms_every_ttl_session_from_now() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "10s", 0)));
    server.apply(0, Command::SessionCreate(session(S2, "30s", 0)));
    assert!(server.rt.tick_at(5_000, false, &server.state).expired.is_empty());
    // Leadership gained at 50 s: the old deadline (20 s) does not count.
    let gained = server.rt.tick_at(50_000, true, &server.state);
    assert_eq!(gained.rearmed, 2);
    assert!(gained.expired.is_empty());
    assert_eq!(server.rt.ttl_deadline_ms(S1), Some(70_000));
    assert_eq!(server.rt.ttl_deadline_ms(S2), Some(110_000));
    assert_eq!(
        server.rt.tick_at(70_000, true, &server.state).expired,
        vec![S1.to_string()]
    );
}

#[test]
fn a_timer_whose_session_is_gone_is_dropped() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "10s", 0)));
    server.rt.tick_at(0, true, &server.state);
    // The session disappears without this runtime seeing it (a snapshot).
    let empty = State::default();
    assert!(server.rt.tick_at(20_000, true, &empty).expired.is_empty());
    assert_eq!(server.rt.ttl_deadline_ms(S1), None);
}

fn lock(key: &str, session: &str) -> Command {
    Command::KvLock {
        key: key.into(),
        value: Vec::new(),
        flags: 0,
        session: session.into(),
    }
}

#[test]
fn destroy_puts_the_held_keys_under_lock_delay() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "", 15_000_000_000)));
    server.apply(0, Command::SessionCreate(session(S2, "", 0)));
    assert_eq!(server.apply(0, lock("held", S1)), CommandResult::Bool(true));
    server.apply(1_000, Command::SessionDestroy { id: S1.into() });
    let delays = server.rt.lock_delays.lock().unwrap().clone();
    assert!(delays.is_delayed("held", 1_000));
    assert!(delays.is_delayed("held", 15_999));
    assert!(!delays.is_delayed("held", 16_000));
    assert!(!delays.is_delayed("other", 1_000));
}

#[test]
fn a_critical_check_puts_the_held_keys_under_lock_delay() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "10s", 5_000_000_000)));
    server.apply(0, lock("a", S1));
    server.apply(2_000, serf(CheckStatus::Critical));
    assert!(server.state.sessions.get(S1).is_none());
    assert!(server.rt.lock_delays.lock().unwrap().is_delayed("a", 6_999));
    assert_eq!(
        server.rt.ttl_deadline_ms(S1),
        None,
        "an invalidated session's timer is disarmed"
    );
}

#[test]
fn zero_lock_delay_leaves_keys_free() {
    let mut server = Server::new();
    server.apply(0, Command::SessionCreate(session(S1, "", 0)));
    server.apply(0, lock("a", S1));
    server.apply(1, Command::SessionDestroy { id: S1.into() });
    assert!(server.rt.lock_delays.lock().unwrap().is_empty());
}

#[test]
fn a_node_deregistered_by_another_case_puts_only_its_sessions_keys_under_lock_delay() {
    let mut server = Server::new();
    let other_node = serf_on("n2", "10.0.0.2", CheckStatus::Passing);
    server.apply(0, other_node);
    server.apply(0, Command::SessionCreate(session(S1, "10s", 5_000_000_000)));
    server.apply(
        0,
        Command::SessionCreate(Session {
            node: "n2".into(),
            ..session(S2, "10s", 5_000_000_000)
        }),
    );
    server.apply(0, lock("on-n1", S1));
    server.apply(0, lock("on-n2", S2));
    server.apply(1_000, Command::NodeDeregister { node: "N1".into() });
    assert!(server.state.sessions.get(S1).is_none());
    assert!(server.state.sessions.get(S2).is_some());
    let delays = server.rt.lock_delays.lock().unwrap().clone();
    assert!(
        delays.is_delayed("on-n1", 5_999),
        "found through the node index, without case"
    );
    assert!(
        !delays.is_delayed("on-n2", 1_000),
        "another node's session is untouched"
    );
    assert_eq!(server.rt.ttl_deadline_ms(S1), None);
    assert!(server.rt.ttl_deadline_ms(S2).is_some());
}
