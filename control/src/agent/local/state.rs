//! The agent's local services and checks: what was registered with this
//! agent (by the HTTP API or config files), with check statuses, outputs
//! and maintenance. The catalog is brought in line with it by the sync
//! ([`super::sync`]). Pure: every method is a state transition fed the
//! time, returning what the check runners must do.

use std::collections::BTreeMap;

use proconsul_shared::state::{CheckStatus, HealthCheck, ServiceInstance};

use crate::http_api::check_def::{CheckRegistration, Rejection, RunnerDef, RunnerKind};
use crate::http_api::service_def::ServiceRegistration;

/// Most services one agent holds.
pub const LOCAL_SERVICES_MAX: usize = 4096;
/// Most checks one agent holds.
pub const LOCAL_CHECKS_MAX: usize = 8192;
/// Check id of the node maintenance check.
pub const NODE_MAINTENANCE_CHECK_ID: &str = "_node_maintenance";
/// Check id prefix of service maintenance checks.
pub const SERVICE_MAINTENANCE_PREFIX: &str = "_service_maintenance:";
/// Notes of a node maintenance check enabled without a reason.
pub const NODE_MAINTENANCE_DEFAULT_REASON: &str =
    "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
/// Notes of a service maintenance check enabled without a reason.
pub const SERVICE_MAINTENANCE_DEFAULT_REASON: &str =
    "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

/// Where a service or check was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `PUT /v1/agent/...register`.
    Api,
    /// A config file (kept across reloads while unchanged).
    ConfigFile,
    /// Maintenance mode (added and removed by the agent itself).
    Maintenance,
}

/// A local service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    /// Node set to this agent's node.
    pub service: ServiceInstance,
    pub source: Source,
}

/// A local check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCheck {
    /// Node, service name and tags filled in.
    pub check: HealthCheck,
    pub runner: RunnerDef,
    pub source: Source,
    /// `DeregisterCriticalServiceAfter`, ms; 0 = never.
    pub deregister_critical_after_ms: u64,
    /// Since when the check is critical (for the reaper).
    pub critical_since_ms: Option<u64>,
    /// When the output last reached the catalog (output-only changes are
    /// synced at most every `check_update_interval`).
    pub output_synced_ms: u64,
}

/// What the check runners must do after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerOp {
    /// (Re)start the runner of this check.
    Start { check_id: String, runner: RunnerDef },
    /// Stop the runner of this check.
    Stop { check_id: String },
    /// A TTL check was updated: restart its expiry timer (the output is
    /// quoted when it later expires).
    TtlTouched { check_id: String, output: String },
}

/// The agent's local services and checks.
#[derive(Debug, Clone)]
pub struct AgentLocalState {
    node: String,
    services: BTreeMap<String, LocalService>,
    checks: BTreeMap<String, LocalCheck>,
    /// Bumped by every change (wakes hash-blocking readers).
    generation: u64,
    /// The config-file definitions in force, as written, by
    /// [`definition_key`] (a reload keeps what did not change).
    file_definitions: BTreeMap<String, serde_json::Value>,
}

/// The key of a config-file definition: `service:<id>` or `check:<id>`.
pub fn definition_key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

fn unknown_service(id: &str) -> Rejection {
    Rejection {
        status: 404,
        message: format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."),
    }
}

fn unknown_check(id: &str) -> Rejection {
    Rejection {
        status: 404,
        message: format!("Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."),
    }
}

fn truncate_output(mut output: String, max_bytes: usize) -> String {
    if output.len() > max_bytes {
        let total = output.len();
        let mut cut = max_bytes;
        while !output.is_char_boundary(cut) {
            cut -= 1;
        }
        output.truncate(cut);
        output.push_str(&format!(" ... (captured {cut} of {total} bytes)"));
    }
    output
}

fn maintenance_runner() -> RunnerDef {
    RunnerDef {
        kind: RunnerKind::NotRun,
        interval_ns: 0,
        timeout_ns: 0,
        success_before_passing: 0,
        failures_before_warning: 0,
        failures_before_critical: 0,
        output_max_bytes: 0,
    }
}

impl AgentLocalState {
    /// An empty state for the node `node`.
    pub fn new(node: &str) -> AgentLocalState {
        AgentLocalState {
            node: node.to_string(),
            services: BTreeMap::new(),
            checks: BTreeMap::new(),
            generation: 0,
            file_definitions: BTreeMap::new(),
        }
    }

    /// The node every local service and check is on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The change counter.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every local service, by id.
    pub fn services(&self) -> &BTreeMap<String, LocalService> {
        &self.services
    }

    /// Every local check, by id.
    pub fn checks(&self) -> &BTreeMap<String, LocalCheck> {
        &self.checks
    }

    /// One local service.
    pub fn service(&self, id: &str) -> Option<&LocalService> {
        self.services.get(id)
    }

    /// The checks of one service, by id.
    pub fn service_checks<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a LocalCheck> + 'a {
        self.checks.values().filter(move |c| c.check.service_id == service_id)
    }

    fn bump(&mut self) {
        self.generation += 1;
    }

    /// Registers (or replaces) a service with its embedded checks. With
    /// `replace_existing_checks`, the service's other checks are removed.
    pub fn add_service(
        &mut self,
        reg: ServiceRegistration,
        source: Source,
        replace_existing_checks: bool,
        now_ms: u64,
    ) -> Result<Vec<RunnerOp>, Rejection> {
        let id = reg.service.id.clone();
        if !self.services.contains_key(&id) && self.services.len() >= LOCAL_SERVICES_MAX {
            return Err(Rejection {
                status: 500,
                message: format!("Too many services on this agent (limit {LOCAL_SERVICES_MAX})"),
            });
        }
        let new_checks = reg
            .checks
            .iter()
            .filter(|c| !self.checks.contains_key(&c.check.check_id))
            .count();
        if self.checks.len() + new_checks > LOCAL_CHECKS_MAX {
            return Err(Rejection {
                status: 500,
                message: format!("Too many checks on this agent (limit {LOCAL_CHECKS_MAX})"),
            });
        }
        let mut ops = Vec::new();
        if replace_existing_checks {
            let keep: Vec<&str> = reg.checks.iter().map(|c| c.check.check_id.as_str()).collect();
            let doomed: Vec<String> = self
                .service_checks(&id)
                .filter(|c| c.source != Source::Maintenance && !keep.contains(&c.check.check_id.as_str()))
                .map(|c| c.check.check_id.clone())
                .collect();
            for check_id in doomed {
                self.checks.remove(&check_id);
                ops.push(RunnerOp::Stop { check_id });
            }
        }
        let mut service = reg.service;
        service.node = self.node.clone();
        // Existing checks of the service carry its name and tags.
        for c in self.checks.values_mut() {
            if c.check.service_id == id {
                c.check.service_name = service.service.clone();
                c.check.service_tags = service.tags.clone();
            }
        }
        self.services.insert(id, LocalService { service, source });
        for check in reg.checks {
            ops.extend(self.insert_check(check, source, now_ms));
        }
        self.bump();
        Ok(ops)
    }

    /// Removes a service, its checks and its maintenance check.
    pub fn remove_service(&mut self, id: &str) -> Result<Vec<RunnerOp>, Rejection> {
        if self.services.remove(id).is_none() {
            return Err(unknown_service(id));
        }
        let doomed: Vec<String> = self.service_checks(id).map(|c| c.check.check_id.clone()).collect();
        let mut ops = Vec::new();
        for check_id in doomed {
            self.checks.remove(&check_id);
            ops.push(RunnerOp::Stop { check_id });
        }
        self.bump();
        Ok(ops)
    }

    /// Registers (or replaces) a standalone check.
    pub fn add_check(
        &mut self,
        reg: CheckRegistration,
        source: Source,
        now_ms: u64,
    ) -> Result<Vec<RunnerOp>, Rejection> {
        let service_id = &reg.check.service_id;
        if !service_id.is_empty() && !self.services.contains_key(service_id) {
            return Err(Rejection {
                status: 404,
                message: format!("ServiceID {service_id:?} does not exist"),
            });
        }
        if !self.checks.contains_key(&reg.check.check_id) && self.checks.len() >= LOCAL_CHECKS_MAX {
            return Err(Rejection {
                status: 500,
                message: format!("Too many checks on this agent (limit {LOCAL_CHECKS_MAX})"),
            });
        }
        let ops = self.insert_check(reg, source, now_ms);
        self.bump();
        Ok(ops)
    }

    fn insert_check(&mut self, reg: CheckRegistration, source: Source, now_ms: u64) -> Vec<RunnerOp> {
        let mut check = reg.check;
        check.node = self.node.clone();
        match self.services.get(&check.service_id) {
            Some(s) if !check.service_id.is_empty() => {
                check.service_name = s.service.service.clone();
                check.service_tags = s.service.tags.clone();
            }
            _ => {
                check.service_name.clear();
                check.service_tags.clear();
            }
        }
        let check_id = check.check_id.clone();
        let critical_since_ms = (check.status == CheckStatus::Critical).then_some(now_ms);
        let runner = reg.runner;
        let op = match runner.kind {
            RunnerKind::NotRun => RunnerOp::Stop {
                check_id: check_id.clone(),
            },
            _ => RunnerOp::Start {
                check_id: check_id.clone(),
                runner: runner.clone(),
            },
        };
        self.checks.insert(
            check_id,
            LocalCheck {
                check,
                runner,
                source,
                deregister_critical_after_ms: reg.deregister_critical_after_ns / 1_000_000,
                critical_since_ms,
                output_synced_ms: 0,
            },
        );
        vec![op]
    }

    /// Removes a check.
    pub fn remove_check(&mut self, id: &str) -> Result<Vec<RunnerOp>, Rejection> {
        if self.checks.remove(id).is_none() {
            return Err(unknown_check(id));
        }
        self.bump();
        Ok(vec![RunnerOp::Stop {
            check_id: id.to_string(),
        }])
    }

    /// `pass`/`warn`/`fail`/`update` on a TTL check.
    pub fn update_ttl(
        &mut self,
        id: &str,
        status: CheckStatus,
        output: String,
        now_ms: u64,
    ) -> Result<Vec<RunnerOp>, Rejection> {
        let Some(c) = self.checks.get(id) else {
            return Err(unknown_check(id));
        };
        if !matches!(c.runner.kind, RunnerKind::Ttl { .. }) {
            return Err(Rejection {
                status: 500,
                message: format!("CheckID {id:?} does not have associated TTL"),
            });
        }
        self.set_status(id, status, output.clone(), now_ms);
        Ok(vec![RunnerOp::TtlTouched {
            check_id: id.to_string(),
            output,
        }])
    }

    /// A runner's report (unknown checks are ignored: the check went away
    /// while the report was in flight). Returns whether the status changed.
    pub fn apply_report(&mut self, id: &str, status: CheckStatus, output: String, now_ms: u64) -> bool {
        self.set_status(id, status, output, now_ms)
    }

    fn set_status(&mut self, id: &str, status: CheckStatus, output: String, now_ms: u64) -> bool {
        let Some(c) = self.checks.get_mut(id) else {
            return false;
        };
        let output = truncate_output(output, c.runner.output_max_bytes.max(1));
        let changed = c.check.status != status;
        if !changed && c.check.output == output {
            return false;
        }
        if changed {
            c.critical_since_ms = (status == CheckStatus::Critical).then_some(now_ms);
        }
        c.check.status = status;
        c.check.output = output;
        self.bump();
        changed
    }

    /// Turns node maintenance on or off. Returns whether anything changed.
    pub fn set_node_maintenance(&mut self, enable: bool, reason: &str, now_ms: u64) -> bool {
        self.set_maintenance(
            NODE_MAINTENANCE_CHECK_ID.to_string(),
            "",
            "Node Maintenance Mode",
            enable,
            reason,
            NODE_MAINTENANCE_DEFAULT_REASON,
            now_ms,
        )
    }

    /// Turns a service's maintenance on or off.
    pub fn set_service_maintenance(
        &mut self,
        service_id: &str,
        enable: bool,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, Rejection> {
        if !self.services.contains_key(service_id) {
            return Err(unknown_service(service_id));
        }
        Ok(self.set_maintenance(
            format!("{SERVICE_MAINTENANCE_PREFIX}{service_id}"),
            service_id,
            "Service Maintenance Mode",
            enable,
            reason,
            SERVICE_MAINTENANCE_DEFAULT_REASON,
            now_ms,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn set_maintenance(
        &mut self,
        check_id: String,
        service_id: &str,
        name: &str,
        enable: bool,
        reason: &str,
        default_reason: &str,
        now_ms: u64,
    ) -> bool {
        if !enable {
            let removed = self.checks.remove(&check_id).is_some();
            if removed {
                self.bump();
            }
            return removed;
        }
        if self.checks.contains_key(&check_id) {
            return false;
        }
        let notes = if reason.is_empty() { default_reason } else { reason };
        let check = HealthCheck {
            check_id,
            name: name.into(),
            status: CheckStatus::Critical,
            notes: notes.into(),
            service_id: service_id.into(),
            check_type: "maintenance".into(),
            ..HealthCheck::default()
        };
        self.insert_check(
            CheckRegistration {
                check,
                runner: maintenance_runner(),
                deregister_critical_after_ns: 0,
            },
            Source::Maintenance,
            now_ms,
        );
        self.bump();
        true
    }

    /// Services whose check has been critical longer than its
    /// `DeregisterCriticalServiceAfter`, each once.
    pub fn critical_too_long(&self, now_ms: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .checks
            .values()
            .filter(|c| c.deregister_critical_after_ms > 0 && !c.check.service_id.is_empty())
            .filter(|c| {
                c.critical_since_ms
                    .is_some_and(|since| now_ms.saturating_sub(since) > c.deregister_critical_after_ms)
            })
            .map(|c| c.check.service_id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Records that these checks' outputs reached the catalog at `now_ms`.
    pub fn mark_output_synced(&mut self, check_ids: &[String], now_ms: u64) {
        for id in check_ids {
            if let Some(c) = self.checks.get_mut(id) {
                c.output_synced_ms = now_ms;
            }
        }
    }

    /// The config-file definition in force under `key`.
    pub fn file_definition(&self, key: &str) -> Option<&serde_json::Value> {
        self.file_definitions.get(key)
    }

    /// Records (or forgets, with `None`) the definition under `key`.
    pub fn set_file_definition(&mut self, key: String, definition: Option<serde_json::Value>) {
        match definition {
            Some(d) => self.file_definitions.insert(key, d),
            None => self.file_definitions.remove(&key),
        };
    }

    /// Ids of services and checks defined by config files.
    pub fn config_file_ids(&self) -> (Vec<String>, Vec<String>) {
        let services = self
            .services
            .iter()
            .filter(|(_, s)| s.source == Source::ConfigFile)
            .map(|(id, _)| id.clone())
            .collect();
        let checks = self
            .checks
            .iter()
            .filter(|(_, c)| c.source == Source::ConfigFile && c.check.service_id.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        (services, checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_api::check_def::{decode_check, ScriptPolicy};
    use crate::http_api::fields::Fields;
    use crate::http_api::service_def::decode_service;
    use serde_json::json;

    const API: ScriptPolicy = ScriptPolicy {
        enable_script_checks: false,
        enable_local_script_checks: false,
        from_config_file: false,
    };

    fn service(v: serde_json::Value) -> ServiceRegistration {
        decode_service(&Fields::of(&v, "S").unwrap(), API).unwrap()
    }

    fn check(v: serde_json::Value) -> CheckRegistration {
        decode_check(&Fields::of(&v, "C").unwrap(), None, API).unwrap()
    }

    #[test]
    fn register_service_with_ttl_check_then_pass_it() {
        let mut s = AgentLocalState::new("n1");
        let ops = s
            .add_service(
                service(json!({"Name": "web", "Check": {"TTL": "10s"}})),
                Source::Api,
                false,
                0,
            )
            .unwrap();
        assert!(matches!(&ops[0], RunnerOp::Start { check_id, .. } if check_id == "service:web"));
        let c = &s.checks()["service:web"];
        assert_eq!(c.check.node, "n1");
        assert_eq!(c.check.service_name, "web");
        assert_eq!(c.check.status, CheckStatus::Critical);
        let g = s.generation();
        let ops = s
            .update_ttl("service:web", CheckStatus::Passing, "ok".into(), 5)
            .unwrap();
        assert_eq!(
            ops,
            vec![RunnerOp::TtlTouched {
                check_id: "service:web".into(),
                output: "ok".into()
            }]
        );
        assert_eq!(s.checks()["service:web"].check.status, CheckStatus::Passing);
        assert!(s.generation() > g);
        assert_eq!(s.checks()["service:web"].critical_since_ms, None);
    }

    #[test]
    fn deregistering_a_service_removes_its_checks() {
        let mut s = AgentLocalState::new("n1");
        s.add_service(
            service(json!({"Name": "web", "Checks": [{"TTL": "1s"}, {"TTL": "2s"}]})),
            Source::Api,
            false,
            0,
        )
        .unwrap();
        s.set_service_maintenance("web", true, "", 0).unwrap();
        assert_eq!(s.checks().len(), 3);
        let ops = s.remove_service("web").unwrap();
        assert_eq!(ops.len(), 3);
        assert!(s.checks().is_empty());
        let e = s.remove_service("web").unwrap_err();
        assert_eq!(e.status, 404);
        assert_eq!(
            e.message,
            "Unknown service ID \"web\". Ensure that the service ID is passed, not the service name."
        );
    }

    #[test]
    fn replace_existing_checks_drops_the_others() {
        let mut s = AgentLocalState::new("n1");
        s.add_service(
            service(json!({"Name": "web", "Checks": [{"TTL": "1s"}, {"TTL": "2s"}]})),
            Source::Api,
            false,
            0,
        )
        .unwrap();
        s.add_service(
            service(json!({"Name": "web", "Check": {"TTL": "1s", "CheckID": "service:web:1"}})),
            Source::Api,
            true,
            0,
        )
        .unwrap();
        let ids: Vec<_> = s.checks().keys().cloned().collect();
        assert_eq!(ids, ["service:web:1"]);
        // Without the flag, checks accumulate.
        s.add_service(
            service(json!({"Name": "web", "Check": {"TTL": "1s"}})),
            Source::Api,
            false,
            0,
        )
        .unwrap();
        assert_eq!(s.checks().len(), 2);
    }

    #[test]
    fn standalone_check_errors() {
        let mut s = AgentLocalState::new("n1");
        let e = s
            .add_check(
                check(json!({"Name": "c", "TTL": "1s", "ServiceID": "nope"})),
                Source::Api,
                0,
            )
            .unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (404, "ServiceID \"nope\" does not exist")
        );
        s.add_check(
            check(json!({"Name": "tcp", "TCP": "127.0.0.1:1", "Interval": "1s"})),
            Source::Api,
            0,
        )
        .unwrap();
        let e = s.update_ttl("tcp", CheckStatus::Passing, String::new(), 0).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (500, "CheckID \"tcp\" does not have associated TTL")
        );
        let e = s.update_ttl("zzz", CheckStatus::Passing, String::new(), 0).unwrap_err();
        assert_eq!(e.status, 404);
        assert_eq!(s.remove_check("zzz").unwrap_err().status, 404);
        assert_eq!(
            s.remove_check("tcp").unwrap(),
            vec![RunnerOp::Stop { check_id: "tcp".into() }]
        );
    }

    #[test]
    fn maintenance_checks() {
        let mut s = AgentLocalState::new("n1");
        assert!(s.set_node_maintenance(true, "", 0));
        assert!(!s.set_node_maintenance(true, "again", 0), "already on");
        let c = &s.checks()[NODE_MAINTENANCE_CHECK_ID];
        assert_eq!(c.check.name, "Node Maintenance Mode");
        assert_eq!(c.check.notes, NODE_MAINTENANCE_DEFAULT_REASON);
        assert_eq!(c.check.status, CheckStatus::Critical);
        assert!(s.set_node_maintenance(false, "", 0));
        assert!(s.checks().is_empty());
        assert_eq!(s.set_service_maintenance("web", true, "x", 0).unwrap_err().status, 404);
        s.add_service(service(json!({"Name": "web"})), Source::Api, false, 0)
            .unwrap();
        assert!(s.set_service_maintenance("web", true, "deploying", 0).unwrap());
        let c = &s.checks()["_service_maintenance:web"];
        assert_eq!(c.check.notes, "deploying");
        assert_eq!(c.check.service_name, "web");
        assert_eq!(c.check.name, "Service Maintenance Mode");
    }

    #[test]
    fn reaper_finds_services_critical_too_long() {
        let mut s = AgentLocalState::new("n1");
        s.add_service(
            service(json!({"Name": "web", "Check": {"TTL": "1s", "DeregisterCriticalServiceAfter": "1m"}})),
            Source::Api,
            false,
            1_000,
        )
        .unwrap();
        assert!(s.critical_too_long(60_000).is_empty());
        assert_eq!(s.critical_too_long(61_001), vec!["web".to_string()]);
        s.update_ttl("service:web", CheckStatus::Passing, String::new(), 61_002)
            .unwrap();
        assert!(s.critical_too_long(200_000).is_empty());
    }

    #[test]
    fn limits_and_output_truncation() {
        let mut s = AgentLocalState::new("n1");
        for i in 0..LOCAL_SERVICES_MAX {
            s.add_service(service(json!({"Name": format!("s{i}")})), Source::Api, false, 0)
                .unwrap();
        }
        let e = s
            .add_service(service(json!({"Name": "one-more"})), Source::Api, false, 0)
            .unwrap_err();
        assert!(e.message.starts_with("Too many services"));
        s.add_service(service(json!({"Name": "s0", "Tags": ["re"]})), Source::Api, false, 0)
            .expect("replacing an existing service is not a new one");
        let mut t = AgentLocalState::new("n1");
        t.add_check(
            check(json!({"Name": "c", "TTL": "1s", "OutputMaxSize": 4})),
            Source::Api,
            0,
        )
        .unwrap();
        t.update_ttl("c", CheckStatus::Warning, "abcdefgh".into(), 0).unwrap();
        assert_eq!(t.checks()["c"].check.output, "abcd ... (captured 4 of 8 bytes)");
    }
}
