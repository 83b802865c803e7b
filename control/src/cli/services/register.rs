//! `proconsul services register [flags] [FILE...]`: registers services
//! from config files or from flags; prints `Registered service: <name>`
//! for each.

use serde_json::Value;

use super::definition::{field, from_files, FlagService};
use crate::cli::client::{call_ok, connect_or_complain, flag_table, usage_error};
use crate::cli::flags::{FlagSpec, ParsedArgs};
use crate::cli::map_flag::map_flag;
use crate::cli::{parse_or_usage, Io};

const USAGE: &str = "Usage: proconsul services register [options] [FILE...]

  Register one or more services using the local agent API. Services can
  be registered from standard configuration files (HCL or JSON) or
  using flags.

      $ proconsul services register web.json
";

const FLAGS: &[FlagSpec] = &[
    FlagSpec::value(
        "address",
        "Address of the service to register for arg-based registration.",
    ),
    FlagSpec::value(
        "id",
        "ID of the service to register for arg-based registration. Defaults to the -name value.",
    ),
    FlagSpec::value("kind", "The services 'kind'"),
    FlagSpec::list(
        "meta",
        "Metadata to set on the service, formatted as key=value. May be repeated.",
    ),
    FlagSpec::value("name", "Name of the service to register for arg-based registration."),
    FlagSpec::value("port", "Port of the service to register for arg-based registration."),
    FlagSpec::value(
        "socket",
        "Path to the Unix domain socket to register for arg-based registration.",
    ),
    FlagSpec::list("tag", "Tag to add to the service. May be repeated."),
    FlagSpec::list(
        "tagged-address",
        "Tagged address to set on the service, formatted as key=value. May be repeated.",
    ),
];

/// The flag form, or the flag error that makes it unusable.
fn flag_service(parsed: &ParsedArgs) -> Result<FlagService, String> {
    let text = |name: &str| parsed.value(name).unwrap_or("").to_string();
    Ok(FlagService {
        kind: text("kind"),
        id: text("id"),
        name: text("name"),
        address: text("address"),
        port: parsed.parsed::<i64>("port").map_err(|e| e.to_string())?.unwrap_or(0),
        socket_path: text("socket"),
        tags: parsed.values("tag").to_vec(),
        meta: map_flag(parsed, "meta").map_err(|e| e.to_string())?,
        tagged_addresses: map_flag(parsed, "tagged-address").map_err(|e| e.to_string())?,
    })
}

pub fn run(args: &[String], io: &mut Io<'_>) -> i32 {
    let table = flag_table(FLAGS, true);
    let parsed = match parse_or_usage(&table, args, USAGE, io) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let from_flags = match flag_service(&parsed) {
        Ok(s) => s,
        Err(e) => return usage_error(&e, USAGE, io),
    };
    let flag_body = match from_flags.to_json() {
        Ok(body) => body,
        Err(e) => {
            io.complain(&e);
            return 1;
        }
    };
    let files = &parsed.positionals;
    if files.is_empty() && from_flags.name.is_empty() {
        return usage_error(
            "Service registration requires at least one argument or flags.",
            USAGE,
            io,
        );
    }
    if !files.is_empty() && !from_flags.name.is_empty() {
        return usage_error("Service registration requires arguments or -id, not both.", USAGE, io);
    }
    let definitions: Vec<Value> = if files.is_empty() {
        vec![flag_body]
    } else {
        match from_files(files) {
            Ok((definitions, warnings)) => {
                for w in warnings {
                    io.complain(&w);
                }
                definitions
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
    for definition in &definitions {
        let name = field(definition, "name").unwrap_or("");
        let context = format!("Error registering service {name:?}");
        let body = definition.to_string();
        if let Err(code) = call_ok(
            &client,
            "PUT",
            "/v1/agent/service/register",
            body.as_bytes(),
            &context,
            io,
        ) {
            return code;
        }
        io.say(&format!("Registered service: {name}"));
    }
    0
}

#[cfg(test)]
mod tests {
    use crate::cli::http_client::tests::{ok_json, serve_canned};
    use crate::cli::tests::run_cmd;

    fn body_of(request: &str) -> serde_json::Value {
        let body = request.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn registers_from_flags() {
        let (addr, seen) = serve_canned(vec![ok_json(200, "")]);
        let flag = format!("-http-addr={addr}");
        let r = run_cmd(&[
            "services",
            "register",
            &flag,
            "-name=web",
            "-port=80",
            "-tag=a",
            "-tag=b",
            "-address=10.0.0.9",
            "-meta=env=prod",
        ]);
        assert_eq!(
            (r.code, r.out.as_str(), r.err.as_str()),
            (0, "Registered service: web\n", "")
        );
        let request = seen.recv().unwrap();
        assert!(request.starts_with("PUT /v1/agent/service/register HTTP/1.1"));
        assert_eq!(
            body_of(&request),
            serde_json::json!({"Name":"web","Port":80,"Address":"10.0.0.9","Tags":["a","b"],"Meta":{"env":"prod"}})
        );
    }

    #[test]
    fn registers_every_service_of_the_files_and_stops_at_the_first_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("svcs.json");
        std::fs::write(
            &file,
            r#"{"services":[{"name":"api","port":1},{"Name":"db","Port":2},{"name":"never"}]}"#,
        )
        .unwrap();
        let (addr, seen) = serve_canned(vec![ok_json(200, ""), ok_json(400, "Invalid check: bad")]);
        let flag = format!("-http-addr={addr}");
        let path = file.display().to_string();
        let r = run_cmd(&["services", "register", &flag, &path]);
        assert_eq!(r.code, 1);
        assert_eq!(r.out, "Registered service: api\n");
        assert_eq!(
            r.err,
            "Error registering service \"db\": Unexpected response code: 400 (Invalid check: bad)\n"
        );
        assert_eq!(
            body_of(&seen.recv().unwrap()),
            serde_json::json!({"name":"api","port":1})
        );
        assert_eq!(
            body_of(&seen.recv().unwrap()),
            serde_json::json!({"Name":"db","Port":2})
        );
    }

    #[test]
    fn bad_usage() {
        let r = run_cmd(&["services", "register"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Service registration requires at least one argument or flags.\nUsage:"));
        let r = run_cmd(&["services", "register", "-name=web", "web.json"]);
        assert_eq!(r.code, 1);
        assert!(r
            .err
            .starts_with("Service registration requires arguments or -id, not both."));
        let r = run_cmd(&["services", "register", "-name=web", "-port=eighty"]);
        assert_eq!(r.code, 1);
        assert!(
            r.err.starts_with("invalid value \"eighty\" for flag -port"),
            "{}",
            r.err
        );
        let r = run_cmd(&["services", "register", "-name=web", "-meta=novalue"]);
        assert_eq!(r.code, 1);
        assert!(r.err.contains("Missing \"=\" value in argument: novalue"));
        let r = run_cmd(&["services", "register", "-name=web", "-tagged-address=lan=h:x"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Invalid Tagged Address: failed to parse port"));
        let r = run_cmd(&["services", "register", "/nonexistent/web.json"]);
        assert_eq!(r.code, 1);
        assert!(r.err.starts_with("Error: "), "{}", r.err);
    }
}
