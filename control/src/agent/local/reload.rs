//! Service and check definitions from config files: decoded like API
//! registrations (script checks allowed by `enable_local_script_checks`),
//! applied at start-up, and diffed on reload: unchanged definitions are
//! left alone (no re-registration, no status reset), removed ones are
//! deregistered, new or changed ones registered. Pure.

use serde_json::Value;

use super::state::{definition_key, AgentLocalState, RunnerOp, Source};
use super::LocalSettings;
use crate::http_api::check_def::{decode_check, CheckRegistration};
use crate::http_api::fields::Fields;
use crate::http_api::service_def::{decode_service, ServiceRegistration};

/// Every definition of the config files, decoded, with what it was
/// decoded from.
#[derive(Debug, Clone, Default)]
pub struct FileDefinitions {
    pub services: Vec<(Value, ServiceRegistration)>,
    pub checks: Vec<(Value, CheckRegistration)>,
}

/// Decodes every definition; the first invalid one is the error.
pub fn decode_definitions(
    services: &[Value],
    checks: &[Value],
    settings: &LocalSettings,
) -> Result<FileDefinitions, String> {
    let scripts = settings.scripts(true);
    let mut out = FileDefinitions::default();
    for raw in services {
        let f = Fields::of(raw, "ServiceDefinition").map_err(|e| format!("service: {e}"))?;
        let reg = decode_service(&f, scripts).map_err(|r| {
            let name = f.string(&["Name"]).unwrap_or_default();
            format!("Failed to register service {name:?}: {}", r.message)
        })?;
        out.services.push((raw.clone(), reg));
    }
    for raw in checks {
        let f = Fields::of(raw, "CheckDefinition").map_err(|e| format!("check: {e}"))?;
        let reg = decode_check(&f, None, scripts).map_err(|r| {
            let name = f.string(&["Name"]).unwrap_or_default();
            format!("Failed to register check {name:?}: {}", r.message)
        })?;
        out.checks.push((raw.clone(), reg));
    }
    let mut ids: Vec<&str> = out.services.iter().map(|(_, r)| r.service.id.as_str()).collect();
    ids.sort();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("service ID {:?} is defined twice", w[0]));
    }
    Ok(out)
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: usize,
    pub removed: usize,
    pub kept: usize,
}

/// Brings the config-file services and checks of `state` to `defs`.
/// Checks naming a service that does not exist fail the whole reload
/// before anything changes.
pub fn apply_definitions(
    state: &mut AgentLocalState,
    defs: FileDefinitions,
    now_ms: u64,
) -> Result<(ReloadSummary, Vec<RunnerOp>), String> {
    for (_, c) in &defs.checks {
        let sid = &c.check.service_id;
        let defined_here = defs.services.iter().any(|(_, s)| &s.service.id == sid);
        if !sid.is_empty() && !defined_here && state.service(sid).is_none() {
            return Err(format!(
                "Failed to register check {:?}: ServiceID {sid:?} does not exist",
                c.check.name
            ));
        }
    }
    let mut summary = ReloadSummary::default();
    let mut ops = Vec::new();
    let (old_services, old_checks) = state.config_file_ids();
    let new_service_ids: Vec<String> = defs.services.iter().map(|(_, r)| r.service.id.clone()).collect();
    let new_check_ids: Vec<String> = defs.checks.iter().map(|(_, r)| r.check.check_id.clone()).collect();
    for id in old_checks.iter().filter(|id| !new_check_ids.contains(id)) {
        if let Ok(more) = state.remove_check(id) {
            ops.extend(more);
            summary.removed += 1;
        }
        state.set_file_definition(definition_key("check", id), None);
    }
    for id in old_services.iter().filter(|id| !new_service_ids.contains(id)) {
        if let Ok(more) = state.remove_service(id) {
            ops.extend(more);
            summary.removed += 1;
        }
        state.set_file_definition(definition_key("service", id), None);
    }
    for (raw, reg) in defs.services {
        let key = definition_key("service", &reg.service.id);
        let unchanged = state.file_definition(&key) == Some(&raw)
            && state
                .service(&reg.service.id)
                .is_some_and(|s| s.source == Source::ConfigFile);
        if unchanged {
            summary.kept += 1;
            continue;
        }
        ops.extend(
            state
                .add_service(reg, Source::ConfigFile, true, now_ms)
                .map_err(|r| r.message)?,
        );
        state.set_file_definition(key, Some(raw));
        summary.added += 1;
    }
    for (raw, reg) in defs.checks {
        let key = definition_key("check", &reg.check.check_id);
        let unchanged = state.file_definition(&key) == Some(&raw)
            && state
                .checks()
                .get(&reg.check.check_id)
                .is_some_and(|c| c.source == Source::ConfigFile);
        if unchanged {
            summary.kept += 1;
            continue;
        }
        ops.extend(
            state
                .add_check(reg, Source::ConfigFile, now_ms)
                .map_err(|r| r.message)?,
        );
        state.set_file_definition(key, Some(raw));
        summary.added += 1;
    }
    Ok((summary, ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::local::tests::settings;
    use proconsul_shared::state::CheckStatus;
    use serde_json::json;

    fn defs(services: Vec<Value>, checks: Vec<Value>) -> FileDefinitions {
        decode_definitions(&services, &checks, &settings()).unwrap()
    }

    #[test]
    fn reload_keeps_unchanged_adds_new_removes_gone() {
        let mut s = AgentLocalState::new("n1");
        let web = json!({"name": "web", "port": 80, "check": {"ttl": "30s"}});
        let db = json!({"name": "db", "port": 5432});
        let (sum, _) = apply_definitions(&mut s, defs(vec![web.clone(), db], vec![]), 0).unwrap();
        assert_eq!(
            sum,
            ReloadSummary {
                added: 2,
                removed: 0,
                kept: 0
            }
        );
        s.update_ttl("service:web", CheckStatus::Passing, "up".into(), 1)
            .unwrap();

        let cache = json!({"name": "cache"});
        let (sum, ops) = apply_definitions(&mut s, defs(vec![web, cache], vec![]), 2).unwrap();
        assert_eq!(
            sum,
            ReloadSummary {
                added: 1,
                removed: 1,
                kept: 1
            }
        );
        assert!(s.service("db").is_none());
        assert!(s.service("cache").is_some());
        assert_eq!(
            s.checks()["service:web"].check.status,
            CheckStatus::Passing,
            "an unchanged service keeps its check status"
        );
        assert!(ops
            .iter()
            .all(|op| !matches!(op, RunnerOp::Start { check_id, .. } if check_id == "service:web")));
    }

    #[test]
    fn api_services_survive_reloads() {
        let mut s = AgentLocalState::new("n1");
        let v = json!({"Name": "api-svc"});
        let reg = decode_service(&Fields::of(&v, "S").unwrap(), settings().scripts(false)).unwrap();
        s.add_service(reg, Source::Api, false, 0).unwrap();
        apply_definitions(&mut s, defs(vec![json!({"name": "f"})], vec![]), 0).unwrap();
        apply_definitions(&mut s, defs(vec![], vec![]), 0).unwrap();
        assert!(s.service("api-svc").is_some());
        assert!(s.service("f").is_none());
    }

    #[test]
    fn invalid_definitions_fail_without_changes() {
        let e = decode_definitions(&[json!({"port": 1})], &[], &settings()).unwrap_err();
        assert_eq!(e, "Failed to register service \"\": Missing service name");
        let e = decode_definitions(&[json!({"name": "a"}), json!({"name": "a"})], &[], &settings()).unwrap_err();
        assert_eq!(e, "service ID \"a\" is defined twice");
        let mut s = AgentLocalState::new("n1");
        let bad = defs(
            vec![json!({"name": "x"})],
            vec![json!({"name": "c", "ttl": "1s", "service_id": "ghost"})],
        );
        let e = apply_definitions(&mut s, bad, 0).unwrap_err();
        assert!(e.contains("ServiceID \"ghost\" does not exist"), "{e}");
        assert!(s.services().is_empty(), "nothing applied");
    }

    #[test]
    fn local_script_checks_are_allowed_from_files() {
        let mut st = settings();
        st.enable_local_script_checks = true;
        let script = json!({"name": "s", "args": ["/bin/true"], "interval": "10s"});
        assert!(decode_definitions(&[], std::slice::from_ref(&script), &st).is_ok());
        let e = decode_definitions(&[], &[script], &settings()).unwrap_err();
        assert!(e.contains("Scripts are disabled"), "{e}");
    }
}
