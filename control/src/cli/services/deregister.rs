//! `proconsul services deregister [-id=ID] [FILE...]`: deregisters a
//! service by ID, or every service of the files (by `id`, else `name`);
//! prints `Deregistered service: <id>` for each.

use super::definition::{field, from_files};
use crate::cli::catalog::path_with_segment;
use crate::cli::client::{call_ok, connect_or_complain, flag_table, usage_error};
use crate::cli::flags::FlagSpec;
use crate::cli::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul services deregister [options] [FILE...]

  Deregister one or more services that were previously registered with
  the local agent.

      $ proconsul services deregister web.json db.json
      $ proconsul services deregister -id=web
";

const FLAGS: &[FlagSpec] = &[FlagSpec::value(
    "id",
    "ID to delete. This must not be set if arguments are given.",
)];

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let flag_id = parsed.value("id").unwrap_or("");
    let files = &parsed.positionals;
    if files.is_empty() && flag_id.is_empty() {
        return usage_error(
            "Service deregistration requires at least one argument or -id.",
            USAGE,
            io,
        );
    }
    if !files.is_empty() && !flag_id.is_empty() {
        return usage_error("Service deregistration requires arguments or -id, not both.", USAGE, io);
    }
    let ids: Vec<String> = if files.is_empty() {
        vec![flag_id.to_string()]
    } else {
        match from_files(files) {
            Ok((definitions, warnings)) => {
                for w in warnings {
                    io.complain(&w);
                }
                definitions
                    .iter()
                    .filter_map(|d| field(d, "id").filter(|id| !id.is_empty()).or_else(|| field(d, "name")))
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            Err(e) => {
                io.complain(&format!("Error: {e}"));
                return 1;
            }
        }
    };
    let client = match connect_or_complain(&parsed, io) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for id in &ids {
        let path = path_with_segment("/v1/agent/service/deregister/", id);
        let context = format!("Error deregistering service {id:?}");
        if let Err(code) = call_ok(&client, "PUT", &path, b"", &context, io) {
            return code;
        }
        io.say(&format!("Deregistered service: {id}"));
    }
    0
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    const UNKNOWN: &str = "Unknown service ID \"web\". Ensure that the service ID is passed, not the service name.";

    #[test]
    fn deregisters_by_id() {
        let (addr, seen) = serve_canned(vec![ok_json(200, ""), ok_json(404, UNKNOWN)]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&["services", "deregister", &flag, "-id=web"]);
        assert_eq!((r.code, r.out.as_str()), (0, "Deregistered service: web\n"));
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/service/deregister/web HTTP/1.1"));
        let r = run_cmd(&["services", "deregister", &flag, "-id=web"]);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.err,
            format!("Error deregistering service \"web\": Unexpected response code: 404 ({UNKNOWN})\n")
        );
    }

    #[test]
    fn deregisters_the_services_of_files_by_id_else_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("svcs.json");
        std::fs::write(&file, r#"{"services":[{"name":"api","id":"api-1"},{"name":"db"}]}"#).unwrap();
        let (addr, seen) = serve_canned(vec![ok_json(200, ""), ok_json(200, "")]);
        let r = run_cmd(&[
            "services",
            "deregister",
            &format!("-http-addr={addr}"),
            &file.display().to_string(),
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(r.out, "Deregistered service: api-1\nDeregistered service: db\n");
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/agent/service/deregister/api-1 "));
        assert!(seen.recv().unwrap().starts_with("PUT /v1/agent/service/deregister/db "));
    }

    #[test]
    fn bad_usage() {
        let r = run_cmd(&["services", "deregister"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Service deregistration requires at least one argument or -id.\nUsage:"));
        let r = run_cmd(&["services", "deregister", "-id=a", "f.json"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Service deregistration requires arguments or -id, not both."));
    }
}
