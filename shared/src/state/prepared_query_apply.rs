//! Applying prepared query writes: Consul's state-store rules, so that
//! every replica refuses the same writes with the same message.

use super::prepared_query::{PreparedQuery, PREPARED_QUERIES_MAX};
use super::State;
use crate::command::CommandResult;
use crate::delta::DeltaOp;

/// Consul's answer to an update or delete of an unknown query.
fn non_existent(id: &str) -> CommandResult {
    CommandResult::Failed(format!("Cannot modify non-existent prepared query: '{id}'"))
}

impl State {
    /// `PreparedQueryCreate` (`create`) or `PreparedQueryUpdate`: checks
    /// existence, the table bound and the name rules, then stores the query
    /// with its indexes (an update keeps its `CreateIndex`).
    pub(super) fn prepared_query_set(
        &mut self,
        index: u64,
        query: &PreparedQuery,
        create: bool,
        ops: &mut Vec<DeltaOp>,
    ) -> CommandResult {
        if query.id.is_empty() {
            return CommandResult::Failed("Missing query ID".into());
        }
        let existing = self.prepared_queries.get(&query.id).map(|q| q.create_index);
        let create_index = match (create, existing) {
            (true, Some(_)) => {
                return CommandResult::Failed(format!("Prepared query ID '{}' already exists", query.id))
            }
            (true, None) => {
                if self.prepared_queries.len() >= PREPARED_QUERIES_MAX {
                    return CommandResult::Failed(format!(
                        "Cannot create prepared query: the limit of {PREPARED_QUERIES_MAX} queries is reached"
                    ));
                }
                index
            }
            (false, None) => return non_existent(&query.id),
            (false, Some(create_index)) => create_index,
        };
        if let Err(message) = self.prepared_queries.check_set(query) {
            return CommandResult::Failed(message);
        }
        if !query.session.is_empty() && self.sessions.get(&query.session).is_none() {
            // Consul's text for a query bound to a session that does not
            // exist (a live one binds it: the query goes with the session).
            return CommandResult::Failed(format!("invalid session {:?}", query.session));
        }
        let stored = PreparedQuery {
            create_index,
            modify_index: index,
            ..query.clone()
        };
        self.prepared_queries.put(stored.clone());
        ops.push(DeltaOp::PreparedQueryPut(stored));
        CommandResult::Done
    }

    /// Deletes the queries bound to session `session_id`, as Consul's
    /// session invalidation does (`deleteSessionTxn`).
    pub(super) fn delete_queries_of_session(&mut self, session_id: &str, index: u64, ops: &mut Vec<DeltaOp>) {
        let bound: Vec<String> = self.prepared_queries.bound_to_session(session_id).cloned().collect();
        for id in bound {
            self.prepared_queries.delete(&id, index);
            ops.push(DeltaOp::PreparedQueryDelete { id, index });
        }
        debug_assert!(self.prepared_queries.bound_to_session(session_id).next().is_none());
    }

    /// `PreparedQueryDelete`: an unknown ID is refused, as in Consul.
    pub(super) fn prepared_query_delete(&mut self, index: u64, id: &str, ops: &mut Vec<DeltaOp>) -> CommandResult {
        if self.prepared_queries.get(id).is_none() {
            return non_existent(id);
        }
        self.prepared_queries.delete(id, index);
        ops.push(DeltaOp::PreparedQueryDelete {
            id: id.to_string(),
            index,
        });
        CommandResult::Done
    }
}

#[cfg(test)]
mod tests {
    use super::super::prepared_query::ServiceQuery;
    use super::*;
    use crate::command::Command;

    const ID_A: &str = "11111111-2222-3333-4444-555555555555";
    const ID_B: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn query(id: &str, name: &str) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            service: ServiceQuery {
                service: "web".into(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        }
    }

    #[test]
    fn create_update_delete_reach_replicas_with_indexes() {
        let mut leader = State::default();
        let mut replica = State::default();
        let mut apply = |index: u64, c: Command, replica: &mut State| {
            let (result, delta) = leader.apply_command(index, &c);
            assert!(replica.apply_delta(&delta));
            result
        };
        let created = apply(2, Command::PreparedQueryCreate(query(ID_A, "web")), &mut replica);
        assert_eq!(created, CommandResult::Done);
        let updated = apply(3, Command::PreparedQueryUpdate(query(ID_A, "web2")), &mut replica);
        assert_eq!(updated, CommandResult::Done);
        let q = replica.prepared_queries.get(ID_A).unwrap();
        assert_eq!((q.create_index, q.modify_index, q.name.as_str()), (2, 3, "web2"));
        let deleted = apply(4, Command::PreparedQueryDelete { id: ID_A.into() }, &mut replica);
        assert_eq!(deleted, CommandResult::Done);
        assert!(replica.prepared_queries.is_empty());
        assert_eq!(replica.prepared_queries.table_index(), 4);
    }

    #[test]
    fn unknown_ids_duplicates_and_sessions_are_refused_without_effect() {
        let mut s = State::default();
        let (r, d) = s.apply_command(2, &Command::PreparedQueryUpdate(query(ID_A, "x")));
        assert_eq!(r, non_existent(ID_A));
        assert!(d.ops.is_empty());
        let (r, _) = s.apply_command(3, &Command::PreparedQueryDelete { id: ID_A.into() });
        assert_eq!(
            r,
            CommandResult::Failed(format!("Cannot modify non-existent prepared query: '{ID_A}'"))
        );
        s.apply_command(4, &Command::PreparedQueryCreate(query(ID_A, "web")));
        let (r, d) = s.apply_command(5, &Command::PreparedQueryCreate(query(ID_B, "Web")));
        assert_eq!(
            r,
            CommandResult::Failed("name 'Web' aliases an existing query name".into())
        );
        assert!(d.ops.is_empty());
        let bound = PreparedQuery {
            session: "s1".into(),
            ..query(ID_B, "other")
        };
        let (r, d) = s.apply_command(6, &Command::PreparedQueryCreate(bound.clone()));
        assert_eq!(r, CommandResult::Failed("invalid session \"s1\"".into()));
        assert!(d.ops.is_empty());
        let (r, _) = s.apply_command(
            7,
            &Command::PreparedQueryUpdate(PreparedQuery {
                id: ID_A.into(),
                ..bound
            }),
        );
        assert_eq!(
            r,
            CommandResult::Failed("invalid session \"s1\"".into()),
            "an update too"
        );
        assert_eq!(s.prepared_queries.len(), 1);
        assert!(s.prepared_queries.get(ID_A).is_some_and(|q| q.session.is_empty()));
    }

    /// Node `n1` with a passing `serfHealth`, and session `session_id` on it.
    fn with_session(s: &mut State, index: u64, session_id: &str) {
        use crate::state::{Session, SessionBehavior};
        use crate::test_fixtures::{node_with_passing_serf_health, SERF_HEALTH};
        let (r, _) = s.apply_command(index, &node_with_passing_serf_health("n1", "10.0.0.1"));
        assert_eq!(r, CommandResult::Done);
        let session = Session {
            id: session_id.into(),
            name: String::new(),
            node: "n1".into(),
            lock_delay_ns: 0,
            behavior: SessionBehavior::Release,
            ttl: String::new(),
            node_checks: vec![SERF_HEALTH.into()],
            service_checks: Vec::new(),
            create_index: 0,
            modify_index: 0,
        };
        let (r, _) = s.apply_command(index + 1, &Command::SessionCreate(session));
        assert_eq!(r, CommandResult::Done);
    }

    #[test]
    fn a_query_bound_to_a_live_session_goes_when_the_session_is_destroyed() {
        const S1: &str = "00000000-0000-0000-0000-0000000000s1";
        let mut leader = State::default();
        with_session(&mut leader, 2, S1);
        let mut replica = crate::snapshot::decode(&crate::snapshot::encode(&leader)).unwrap();
        let bound = |id: &str, name: &str| PreparedQuery {
            session: S1.into(),
            ..query(id, name)
        };
        for (index, c) in [
            (4, Command::PreparedQueryCreate(bound(ID_A, "a"))),
            (5, Command::PreparedQueryCreate(bound(ID_B, "b"))),
            (
                6,
                Command::PreparedQueryCreate(query("cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee", "free")),
            ),
            // Unbinding a query by an update keeps it when the session goes.
            (7, Command::PreparedQueryUpdate(query(ID_B, "b"))),
        ] {
            let (r, d) = leader.apply_command(index, &c);
            assert_eq!(r, CommandResult::Done, "{c:?}");
            assert!(replica.apply_delta(&d));
        }
        assert_eq!(leader.prepared_queries.bound_to_session(S1).collect::<Vec<_>>(), [ID_A]);

        let (r, d) = leader.apply_command(8, &Command::SessionDestroy { id: S1.into() });
        assert_eq!(r, CommandResult::Bool(true));
        assert!(d
            .ops
            .iter()
            .any(|o| matches!(o, DeltaOp::PreparedQueryDelete { id, index: 8 } if id == ID_A)));
        assert!(replica.apply_delta(&d));
        for state in [&leader, &replica] {
            assert!(
                state.prepared_queries.get(ID_A).is_none(),
                "the bound query went with it"
            );
            assert!(state.prepared_queries.get(ID_B).is_some());
            assert_eq!(state.prepared_queries.len(), 2);
            assert_eq!(state.prepared_queries.table_index(), 8);
            assert!(state.prepared_queries.bound_to_session(S1).next().is_none());
            assert!(matches!(
                state.prepared_queries.resolve("a"),
                super::super::prepared_query::Resolved::NotFound
            ));
        }
    }

    #[test]
    fn a_check_invalidating_the_session_deletes_its_query_and_restore_keeps_the_binding() {
        const S1: &str = "00000000-0000-0000-0000-0000000000s1";
        let mut s = State::default();
        with_session(&mut s, 2, S1);
        let bound = PreparedQuery {
            session: S1.into(),
            ..query(ID_A, "a")
        };
        s.apply_command(4, &Command::PreparedQueryCreate(bound));
        let mut restored = crate::snapshot::decode(&crate::snapshot::encode(&s)).unwrap();
        assert_eq!(
            restored.prepared_queries.bound_to_session(S1).collect::<Vec<_>>(),
            [ID_A]
        );
        let (_, d) = restored.apply_command(5, &Command::NodeDeregister { node: "n1".into() });
        assert!(d
            .ops
            .iter()
            .any(|o| matches!(o, DeltaOp::PreparedQueryDelete { id, .. } if id == ID_A)));
        assert!(restored.prepared_queries.is_empty());
        assert!(restored.sessions.is_empty());
    }

    #[test]
    fn snapshots_carry_the_queries_and_their_indexes() {
        let mut s = State::default();
        s.apply_command(2, &Command::PreparedQueryCreate(query(ID_A, "web")));
        s.apply_command(3, &Command::PreparedQueryCreate(query(ID_B, "db")));
        s.apply_command(4, &Command::PreparedQueryDelete { id: ID_B.into() });
        let restored = crate::snapshot::decode(&crate::snapshot::encode(&s)).unwrap();
        assert_eq!(restored.prepared_queries.table_index(), 4);
        assert_eq!(restored.prepared_queries.len(), 1);
        assert_eq!(
            **restored.prepared_queries.get(ID_A).unwrap(),
            **s.prepared_queries.get(ID_A).unwrap()
        );
        assert!(matches!(
            restored.prepared_queries.resolve("WEB"),
            super::super::prepared_query::Resolved::Query(q) if q.id == ID_A
        ));
    }

    #[test]
    fn the_table_bound_refuses_one_more_create() {
        let mut s = State::default();
        for i in 0..PREPARED_QUERIES_MAX as u64 {
            let id = format!("00000000-0000-0000-0000-{i:012x}");
            let (r, _) = s.apply_command(i + 1, &Command::PreparedQueryCreate(query(&id, "")));
            assert_eq!(r, CommandResult::Done);
        }
        let (r, d) = s.apply_command(
            PREPARED_QUERIES_MAX as u64 + 1,
            &Command::PreparedQueryCreate(query(ID_A, "")),
        );
        assert!(matches!(r, CommandResult::Failed(m) if m.contains("limit of 4096 queries")));
        assert!(d.ops.is_empty());
        let (r, _) = s.apply_command(
            PREPARED_QUERIES_MAX as u64 + 2,
            &Command::PreparedQueryUpdate(query("00000000-0000-0000-0000-000000000000", "renamed")),
        );
        assert_eq!(r, CommandResult::Done, "updates still work at the bound");
    }
}
