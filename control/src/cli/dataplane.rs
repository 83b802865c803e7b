//! The hidden `__dataplane <DataplaneLaunch JSON>` verb: how the agent runs
//! this binary as its data plane. Runs outside any tokio runtime.

use proconsul_shared::agent_info::DataplaneLaunch;

use super::Io;
pub use crate::supervise::DATAPLANE_VERB as VERB;

/// Largest launch JSON accepted.
const LAUNCH_JSON_BYTES_MAX: usize = 64 * 1024;

/// Parses the launch argument. Pure.
pub fn parse_launch(args: &[String]) -> Result<DataplaneLaunch, String> {
    let [json] = args else {
        return Err(format!("usage: proconsul {VERB} <launch JSON>"));
    };
    if json.len() > LAUNCH_JSON_BYTES_MAX {
        return Err(format!("launch JSON over the {LAUNCH_JSON_BYTES_MAX}-byte limit"));
    }
    serde_json::from_str(json).map_err(|e| format!("invalid data plane launch: {e}"))
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    match parse_launch(args) {
        Ok(launch) => proconsul_dataplane::run(launch),
        Err(e) => {
            io.complain(&e);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::run_cmd;

    #[test]
    fn launch_round_trips() {
        let launch = DataplaneLaunch {
            run_dir: "/tmp/r".into(),
            http_addrs: vec!["127.0.0.1:18500".parse().unwrap()],
            dns_addrs: vec![],
            threads: 0,
            log_level: "info".into(),
            exit_with_control_plane: true,
            http_max_conns_per_client: 200,
            wake_hold_ms_max: 50,
        };
        let json = serde_json::to_string(&launch).unwrap();
        assert_eq!(parse_launch(&[json]), Ok(launch));
    }

    #[test]
    fn bad_launches_fail_cleanly() {
        let r = run_cmd(&[VERB, "{not json"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("invalid data plane launch"));
        let r = run_cmd(&[VERB]);
        assert_eq!(r.code, 1);
        assert!(parse_launch(&["x".repeat(LAUNCH_JSON_BYTES_MAX + 1)])
            .unwrap_err()
            .contains("limit"));
    }
}
