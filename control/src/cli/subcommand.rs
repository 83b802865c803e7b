//! Verbs with sub-verbs (`kv get`, `catalog nodes`, `operator raft
//! list-peers`): pick the sub-verb by its name, or print the usage (exit 0
//! for `-h`/`-help`/`--help`, 1 for anything else, as Consul's CLI does).

use super::Io;

/// A sub-verb: its name and what runs it with the arguments after it.
pub type SubVerb = (&'static str, fn(&[String], &mut Io<'_>) -> i32);

/// Runs the sub-verb `args[0]` names with the rest of `args`.
pub fn dispatch(args: &[String], io: &mut Io<'_>, usage: &str, verbs: &[SubVerb]) -> i32 {
    let rest = args.get(1..).unwrap_or(&[]);
    let name = args.first().map(String::as_str);
    if let Some((_, run)) = verbs.iter().find(|(n, _)| Some(*n) == name) {
        return run(rest, io);
    }
    let _ = io.err.write_all(usage.as_bytes());
    match name {
        Some("-h" | "-help" | "--help") => 0,
        _ => 1,
    }
}
