//! Decoding a check definition (`PUT /v1/agent/check/register`, a service's
//! `Check`/`Checks`, a config file's `check`/`checks`) into the catalog
//! [`HealthCheck`] plus what its runner needs ([`RunnerDef`]). Pure.

use std::collections::BTreeMap;

use proconsul_shared::state::{CheckDefinition, CheckStatus, HealthCheck};

use super::fields::{DecodeError, Fields};

/// Output kept of one check run when `OutputMaxSize` is not given
/// (Consul's `DefaultBufSize`).
pub const CHECK_OUTPUT_BYTES_DEFAULT: usize = 4096;
/// Largest `OutputMaxSize` accepted.
pub const CHECK_OUTPUT_BYTES_MAX: usize = 1024 * 1024;
/// Default timeout of network checks (Consul: 10 s).
pub const CHECK_TIMEOUT_NS_DEFAULT: u64 = 10_000_000_000;
/// Default timeout of script checks (Consul: 30 s).
pub const SCRIPT_TIMEOUT_NS_DEFAULT: u64 = 30_000_000_000;
/// Shortest `DeregisterCriticalServiceAfter` Consul honours (1 min).
pub const DEREGISTER_AFTER_NS_MIN: u64 = 60_000_000_000;
/// Longest id, name or note accepted, in bytes.
pub const CHECK_TEXT_BYTES_MAX: usize = 1024;
/// Most arguments of a script check.
pub const SCRIPT_ARGS_MAX: usize = 64;

/// How a check is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunnerKind {
    /// Passed by `pass`/`warn`/`fail`/`update`; critical once `ttl_ns` passes.
    Ttl {
        ttl_ns: u64,
    },
    Http {
        url: String,
        method: String,
        header: BTreeMap<String, Vec<String>>,
        body: String,
        tls_skip_verify: bool,
        tls_server_name: String,
        disable_redirects: bool,
    },
    Tcp {
        address: String,
    },
    Script {
        args: Vec<String>,
    },
    /// A type Consul knows that this agent does not run (gRPC, UDP, alias,
    /// docker, h2ping, OS service): the check keeps the status it was given.
    NotRun,
}

/// A check's runner parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerDef {
    pub kind: RunnerKind,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    pub output_max_bytes: usize,
}

/// A decoded check: the catalog entry (node and indexes unset) and how to
/// run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRegistration {
    pub check: HealthCheck,
    pub runner: RunnerDef,
    /// `DeregisterCriticalServiceAfter`, ns; 0 = never.
    pub deregister_critical_after_ns: u64,
}

/// An invalid definition: the status and text Consul answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
}

impl Rejection {
    /// `400 <message>`.
    pub fn bad_request(message: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            message: message.into(),
        }
    }

    /// `413` for a body of `len` bytes over `max_bytes`, in Consul's words.
    pub fn body_too_large(len: usize, max_bytes: usize) -> Rejection {
        Rejection {
            status: 413,
            message: format!("Request body({len} bytes) too large, max size: {max_bytes} bytes"),
        }
    }

    /// `400 Request decode failed: <err>`.
    pub fn decode(e: DecodeError) -> Rejection {
        Rejection::bad_request(format!("Request decode failed: {e}"))
    }
}

impl From<DecodeError> for Rejection {
    fn from(e: DecodeError) -> Self {
        Rejection::decode(e)
    }
}

/// Where a definition came from, for the script-check rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptPolicy {
    /// `enable_script_checks`: scripts from anywhere.
    pub enable_script_checks: bool,
    /// `enable_local_script_checks`: scripts from config files only.
    pub enable_local_script_checks: bool,
    /// The definition is from a config file.
    pub from_config_file: bool,
}

impl ScriptPolicy {
    fn allows_scripts(&self) -> bool {
        self.enable_script_checks || (self.enable_local_script_checks && self.from_config_file)
    }
}

/// Consul's text when a script check is refused (500).
pub const SCRIPTS_DISABLED: &str =
    "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

/// Defaults a service gives its embedded checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedIn<'s> {
    pub service_id: &'s str,
    pub service_name: &'s str,
    /// 1-based position among several checks; `None` for a single `Check`.
    pub position: Option<usize>,
}

fn bounded(text: &str, what: &str) -> Result<(), Rejection> {
    if text.len() > CHECK_TEXT_BYTES_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid check: {what} exceeds {CHECK_TEXT_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

fn u32_field(f: &Fields<'_>, names: &[&str]) -> Result<u32, Rejection> {
    Ok(f.int(names, 0, i64::from(u32::MAX), "int")?.unwrap_or(0) as u32)
}

/// Decodes one check definition.
pub fn decode_check(
    f: &Fields<'_>,
    embedded: Option<&EmbeddedIn<'_>>,
    scripts: ScriptPolicy,
) -> Result<CheckRegistration, Rejection> {
    let mut name = f.string(&["Name"])?;
    let mut check_id = f.string(&["CheckID", "ID"])?;
    let mut service_id = f.string(&["ServiceID"])?;
    if let Some(e) = embedded {
        if name.is_empty() {
            name = format!("Service '{}' check", e.service_name);
        }
        if check_id.is_empty() {
            check_id = match e.position {
                Some(n) => format!("service:{}:{n}", e.service_id),
                None => format!("service:{}", e.service_id),
            };
        }
        service_id = e.service_id.to_string();
    }
    if name.is_empty() {
        return Err(Rejection::bad_request("Missing check name"));
    }
    if check_id.is_empty() {
        check_id = name.clone();
    }
    let notes = f.string(&["Notes"])?;
    for (text, what) in [
        (&name, "Name"),
        (&check_id, "CheckID"),
        (&notes, "Notes"),
        (&service_id, "ServiceID"),
    ] {
        bounded(text, what)?;
    }
    let status_text = f.string(&["Status"])?;
    let status = if status_text.is_empty() {
        CheckStatus::Critical
    } else {
        match CheckStatus::parse(&status_text) {
            Some(s) => s,
            None if embedded.is_some() => {
                return Err(Rejection::bad_request(
                    "Status for checks must 'passing', 'warning', 'critical'",
                ))
            }
            None => return Err(Rejection::bad_request("Bad check status")),
        }
    };

    let ttl_ns = f.duration_ns(&["TTL"])?;
    let interval_ns = f.duration_ns(&["Interval"])?;
    let http = f.string(&["HTTP"])?;
    let tcp = f.string(&["TCP"])?;
    let mut args = f.strings(&["Args", "ScriptArgs"])?;
    if args.is_empty() {
        let script = f.string(&["Script"])?;
        if !script.is_empty() {
            args = vec!["/bin/sh".into(), "-c".into(), script];
        }
    }
    if args.len() > SCRIPT_ARGS_MAX {
        return Err(Rejection::bad_request(format!(
            "Invalid check: more than {SCRIPT_ARGS_MAX} script arguments"
        )));
    }
    let other_type = ["UDP", "GRPC", "H2PING", "DockerContainerID", "OSService"]
        .iter()
        .find(|n| f.get(&[n]).and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty()));
    let alias = !f.string(&["AliasNode"])?.is_empty() || !f.string(&["AliasService"])?.is_empty();
    let interval_check = !http.is_empty() || !tcp.is_empty() || !args.is_empty() || other_type.is_some();
    let invalid = |why: &str| Rejection::bad_request(format!("Invalid check: {why}"));
    if interval_ns > 0 && ttl_ns > 0 {
        return Err(invalid("Interval and TTL cannot both be specified"));
    }
    if interval_check && interval_ns == 0 {
        return Err(invalid(
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ));
    }
    if !interval_check && !alias && ttl_ns == 0 {
        return Err(invalid("TTL must be > 0 for TTL checks"));
    }
    if !args.is_empty() && !scripts.allows_scripts() {
        return Err(Rejection {
            status: 500,
            message: SCRIPTS_DISABLED.into(),
        });
    }

    let header = f.string_list_map(&["Header"])?;
    let method = f.string(&["Method"])?;
    let body = f.string(&["Body"])?;
    let tls_server_name = f.string(&["TLSServerName"])?;
    let tls_skip_verify = f.bool(&["TLSSkipVerify"])?;
    let disable_redirects = f.bool(&["DisableRedirects"])?;
    let (kind, check_type) = if ttl_ns > 0 {
        (RunnerKind::Ttl { ttl_ns }, "ttl")
    } else if !http.is_empty() {
        let kind = RunnerKind::Http {
            url: http.clone(),
            method: if method.is_empty() {
                "GET".into()
            } else {
                method.clone()
            },
            header: header.clone(),
            body: body.clone(),
            tls_skip_verify,
            tls_server_name: tls_server_name.clone(),
            disable_redirects,
        };
        (kind, "http")
    } else if !tcp.is_empty() {
        (RunnerKind::Tcp { address: tcp.clone() }, "tcp")
    } else if !args.is_empty() {
        (RunnerKind::Script { args }, "script")
    } else if let Some(other) = other_type {
        let word = match *other {
            "DockerContainerID" => "docker".to_string(),
            "OSService" => "os_service".to_string(),
            o => o.to_ascii_lowercase(),
        };
        return not_run(word, f, name, check_id, notes, service_id, status);
    } else {
        return not_run("alias".into(), f, name, check_id, notes, service_id, status);
    };
    let timeout_given = f.duration_ns(&["Timeout"])?;
    let timeout_ns = match (timeout_given, &kind) {
        (0, RunnerKind::Script { .. }) => SCRIPT_TIMEOUT_NS_DEFAULT,
        (0, _) => CHECK_TIMEOUT_NS_DEFAULT,
        (t, _) => t,
    };
    let output_max_bytes = match f.int(&["OutputMaxSize"], 0, i64::MAX, "int")? {
        None | Some(0) => CHECK_OUTPUT_BYTES_DEFAULT,
        Some(n) => (n as usize).min(CHECK_OUTPUT_BYTES_MAX),
    };
    let deregister_ns = f.duration_ns(&["DeregisterCriticalServiceAfter"])?;
    let deregister_critical_after_ns = if deregister_ns > 0 {
        deregister_ns.max(DEREGISTER_AFTER_NS_MIN)
    } else {
        0
    };
    let is_ttl = matches!(kind, RunnerKind::Ttl { .. });
    let definition = CheckDefinition {
        http,
        header,
        method,
        body,
        tls_server_name,
        tls_skip_verify,
        tcp,
        interval_ns,
        timeout_ns: if is_ttl { 0 } else { timeout_given },
        deregister_critical_service_after_ns: deregister_critical_after_ns,
    };
    Ok(CheckRegistration {
        check: HealthCheck {
            check_id,
            name,
            status,
            notes,
            service_id,
            check_type: check_type.into(),
            definition,
            ..HealthCheck::default()
        },
        runner: RunnerDef {
            kind,
            interval_ns,
            timeout_ns,
            success_before_passing: u32_field(f, &["SuccessBeforePassing"])?,
            failures_before_warning: u32_field(f, &["FailuresBeforeWarning"])?,
            failures_before_critical: u32_field(f, &["FailuresBeforeCritical"])?,
            output_max_bytes,
        },
        deregister_critical_after_ns,
    })
}

fn not_run(
    check_type: String,
    f: &Fields<'_>,
    name: String,
    check_id: String,
    notes: String,
    service_id: String,
    status: CheckStatus,
) -> Result<CheckRegistration, Rejection> {
    let interval_ns = f.duration_ns(&["Interval"])?;
    Ok(CheckRegistration {
        check: HealthCheck {
            check_id,
            name,
            status,
            notes,
            service_id,
            check_type,
            definition: CheckDefinition {
                interval_ns,
                ..CheckDefinition::default()
            },
            ..HealthCheck::default()
        },
        runner: RunnerDef {
            kind: RunnerKind::NotRun,
            interval_ns,
            timeout_ns: 0,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
            output_max_bytes: CHECK_OUTPUT_BYTES_DEFAULT,
        },
        deregister_critical_after_ns: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const API: ScriptPolicy = ScriptPolicy {
        enable_script_checks: false,
        enable_local_script_checks: false,
        from_config_file: false,
    };

    fn decode(v: serde_json::Value) -> Result<CheckRegistration, Rejection> {
        decode_check(&Fields::of(&v, "CheckDefinition").unwrap(), None, API)
    }

    #[test]
    fn ttl_check_defaults() {
        let r = decode(json!({"Name": "mem", "TTL": "15s"})).unwrap();
        assert_eq!(r.check.check_id, "mem", "ID defaults to the name");
        assert_eq!(r.check.status, CheckStatus::Critical);
        assert_eq!(r.check.check_type, "ttl");
        assert_eq!(r.runner.kind, RunnerKind::Ttl { ttl_ns: 15_000_000_000 });
    }

    #[test]
    fn http_check_in_snake_case() {
        let r = decode(json!({
            "name": "web", "check_id": "w1", "http": "http://127.0.0.1:1/", "interval": "5s",
            "header": {"X-Thing": ["a"]}, "tls_skip_verify": true, "status": "passing",
            "deregister_critical_service_after": "10s"
        }))
        .unwrap();
        assert_eq!(r.check.check_id, "w1");
        assert_eq!(r.check.status, CheckStatus::Passing);
        assert_eq!(r.check.definition.header["X-Thing"], vec!["a"]);
        assert_eq!(
            r.deregister_critical_after_ns, DEREGISTER_AFTER_NS_MIN,
            "raised to the 1 min floor"
        );
        assert_eq!(r.runner.timeout_ns, CHECK_TIMEOUT_NS_DEFAULT);
        match r.runner.kind {
            RunnerKind::Http {
                method,
                tls_skip_verify,
                ..
            } => {
                assert_eq!(method, "GET");
                assert!(tls_skip_verify);
            }
            other => panic!("not http: {other:?}"),
        }
    }

    #[test]
    fn validation_errors() {
        let e = decode(json!({"TTL": "1s"})).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (400, "Missing check name"));
        let e = decode(json!({"Name": "x"})).unwrap_err();
        assert_eq!(e.message, "Invalid check: TTL must be > 0 for TTL checks");
        let e = decode(json!({"Name": "x", "HTTP": "http://a/"})).unwrap_err();
        assert!(e.message.starts_with("Invalid check: Interval must be > 0"));
        let e = decode(json!({"Name": "x", "TTL": "1s", "Interval": "1s"})).unwrap_err();
        assert_eq!(e.message, "Invalid check: Interval and TTL cannot both be specified");
        let e = decode(json!({"Name": "x", "TTL": "1s", "Status": "ok"})).unwrap_err();
        assert_eq!(e.message, "Bad check status");
        let e = decode(json!({"Name": "x", "TTL": "soon"})).unwrap_err();
        assert_eq!(e.message, "Request decode failed: time: invalid duration \"soon\"");
        let e = decode(json!({"Name": "x".repeat(CHECK_TEXT_BYTES_MAX + 1), "TTL": "1s"})).unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn scripts_need_permission() {
        let v = json!({"Name": "s", "Args": ["/bin/true"], "Interval": "1s"});
        let e = decode(v.clone()).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (500, SCRIPTS_DISABLED));
        let local = ScriptPolicy {
            enable_local_script_checks: true,
            from_config_file: true,
            ..API
        };
        let r = decode_check(&Fields::of(&v, "C").unwrap(), None, local).unwrap();
        assert_eq!(r.runner.timeout_ns, SCRIPT_TIMEOUT_NS_DEFAULT);
        let api_local = ScriptPolicy {
            enable_local_script_checks: true,
            ..API
        };
        assert_eq!(
            decode_check(&Fields::of(&v, "C").unwrap(), None, api_local)
                .unwrap_err()
                .status,
            500
        );
    }

    #[test]
    fn embedded_checks_get_service_ids_and_names() {
        let v = json!({"TTL": "10s"});
        let e = EmbeddedIn {
            service_id: "web1",
            service_name: "web",
            position: Some(2),
        };
        let r = decode_check(&Fields::of(&v, "C").unwrap(), Some(&e), API).unwrap();
        assert_eq!(r.check.check_id, "service:web1:2");
        assert_eq!(r.check.name, "Service 'web' check");
        assert_eq!(r.check.service_id, "web1");
        let single = EmbeddedIn { position: None, ..e };
        let r = decode_check(&Fields::of(&v, "C").unwrap(), Some(&single), API).unwrap();
        assert_eq!(r.check.check_id, "service:web1");
        let bad = json!({"TTL": "10s", "Status": "up"});
        let err = decode_check(&Fields::of(&bad, "C").unwrap(), Some(&single), API).unwrap_err();
        assert_eq!(err.message, "Status for checks must 'passing', 'warning', 'critical'");
    }

    #[test]
    fn unrun_types_keep_their_status() {
        let r = decode(json!({"Name": "g", "GRPC": "127.0.0.1:1", "Interval": "1s", "Status": "passing"})).unwrap();
        assert_eq!(r.check.check_type, "grpc");
        assert_eq!(r.runner.kind, RunnerKind::NotRun);
        let r = decode(json!({"Name": "a", "AliasService": "web"})).unwrap();
        assert_eq!(r.check.check_type, "alias");
    }
}
