//! Consul-style command-line flags, parsed the way Go's `flag` package (and
//! therefore the real `consul` binary) parses them.
//!
//! * `-name` and `--name` are the same flag.
//! * Value flags take `-name=value` or `-name value` (the next argument is
//!   taken whatever it looks like, as in Go).
//! * Boolean flags are bare (`-dev`) or `-dev=true|false` (Go's `ParseBool`
//!   spellings); `-dev false` does NOT set it to false.
//! * List flags may repeat (`-config-file a.json -config-file b.json`).
//! * Parsing stops at the first non-flag argument, at a lone `-` (which is
//!   itself an argument: "read stdin"), or after `--`.
//!
//! Pure: no process state is read here.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// Bare `-name`, or `-name=<bool>`.
    Bool,
    /// `-name=value` or `-name value`; the last occurrence wins.
    Value,
    /// Like [`FlagKind::Value`], but every occurrence is kept.
    List,
}

/// One flag a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    /// Name without dashes (`data-dir`).
    pub name: &'static str,
    pub kind: FlagKind,
    /// One line for the usage text; empty hides the flag from the usage.
    pub usage: &'static str,
}

impl FlagSpec {
    pub const fn boolean(name: &'static str, usage: &'static str) -> FlagSpec {
        FlagSpec {
            name,
            kind: FlagKind::Bool,
            usage,
        }
    }

    pub const fn value(name: &'static str, usage: &'static str) -> FlagSpec {
        FlagSpec {
            name,
            kind: FlagKind::Value,
            usage,
        }
    }

    pub const fn list(name: &'static str, usage: &'static str) -> FlagSpec {
        FlagSpec {
            name,
            kind: FlagKind::List,
            usage,
        }
    }
}

/// Why the arguments did not parse. The texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagError {
    /// `-h`, `-help` or `--help`: print the usage and exit 0.
    HelpRequested,
    Unknown(String),
    MissingValue(String),
    BadSyntax(String),
    InvalidBool {
        name: String,
        value: String,
    },
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagError::HelpRequested => write!(f, "help requested"),
            FlagError::Unknown(name) => write!(f, "flag provided but not defined: -{name}"),
            FlagError::MissingValue(name) => write!(f, "flag needs an argument: -{name}"),
            FlagError::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            FlagError::InvalidBool { name, value } => {
                write!(f, "invalid boolean value {value:?} for -{name}: parse error")
            }
            FlagError::InvalidValue { name, value, reason } => {
                write!(f, "invalid value {value:?} for flag -{name}: {reason}")
            }
        }
    }
}

impl std::error::Error for FlagError {}

/// The flags that were given, and the arguments after them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedArgs {
    given: BTreeMap<&'static str, Vec<String>>,
    /// Every flag occurrence in command-line order.
    ordered: Vec<(&'static str, String)>,
    /// Arguments after the last flag.
    pub positionals: Vec<String>,
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `args` (the arguments after the verb) against `specs`.
pub fn parse(specs: &[FlagSpec], args: &[String]) -> Result<ParsedArgs, FlagError> {
    let mut parsed = ParsedArgs::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        if arg == "--" {
            i += 1;
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::BadSyntax(arg.clone()));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            if name == "h" || name == "help" {
                return Err(FlagError::HelpRequested);
            }
            return Err(FlagError::Unknown(name.to_string()));
        };
        i += 1;
        let value = match spec.kind {
            FlagKind::Bool => {
                let v = inline_value.unwrap_or_else(|| "true".to_string());
                match parse_go_bool(&v) {
                    Some(b) => b.to_string(),
                    None => {
                        return Err(FlagError::InvalidBool {
                            name: name.to_string(),
                            value: v,
                        })
                    }
                }
            }
            FlagKind::Value | FlagKind::List => match inline_value {
                Some(v) => v,
                None => {
                    let Some(next) = args.get(i) else {
                        return Err(FlagError::MissingValue(name.to_string()));
                    };
                    i += 1;
                    next.clone()
                }
            },
        };
        parsed.ordered.push((spec.name, value.clone()));
        parsed.given.entry(spec.name).or_default().push(value);
    }
    parsed.positionals = args[i..].to_vec();
    Ok(parsed)
}

impl ParsedArgs {
    /// Whether the flag appeared at all (even as `-flag=false`).
    pub fn is_set(&self, name: &str) -> bool {
        self.given.contains_key(name)
    }

    /// A boolean flag's value: false when absent, else its last setting.
    pub fn flag(&self, name: &str) -> bool {
        self.bool_opt(name).unwrap_or(false)
    }

    /// A boolean flag's last setting, `None` when absent.
    pub fn bool_opt(&self, name: &str) -> Option<bool> {
        self.value(name).map(|v| v == "true")
    }

    /// The last value given for the flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.given.get(name).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given for a repeatable flag, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.given.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The occurrences of any of `names`, interleaved in command-line order
    /// (`-config-file` and `-config-dir` load in the order given).
    pub fn in_order(&self, names: &[&str]) -> Vec<(&'static str, &str)> {
        self.ordered
            .iter()
            .filter(|(n, _)| names.contains(n))
            .map(|(n, v)| (*n, v.as_str()))
            .collect()
    }

    /// The last value parsed as `T`; an error names the flag.
    pub fn parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, FlagError>
    where
        T::Err: fmt::Display,
    {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse::<T>().map(Some).map_err(|e| FlagError::InvalidValue {
                name: name.to_string(),
                value: v.to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The usage text for a flag table, one entry per flag as `consul -h` prints.
pub fn usage(specs: &[FlagSpec]) -> String {
    let mut out = String::new();
    let mut sorted: Vec<&FlagSpec> = specs.iter().collect();
    sorted.sort_by_key(|s| s.name);
    for s in sorted.into_iter().filter(|s| !s.usage.is_empty()) {
        match s.kind {
            FlagKind::Bool => out.push_str(&format!("  -{}\n", s.name)),
            FlagKind::Value | FlagKind::List => out.push_str(&format!("  -{}=<value>\n", s.name)),
        }
        out.push_str(&format!("     {}\n\n", s.usage));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec::boolean("dev", "dev mode"),
        FlagSpec::boolean("recurse", "recurse"),
        FlagSpec::value("data-dir", "data dir"),
        FlagSpec::value("node", "node name"),
        FlagSpec::value("separator", "separator"),
        FlagSpec::list("config-file", "config file"),
    ];

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn ok(list: &[&str]) -> ParsedArgs {
        parse(SPECS, &args(list)).unwrap()
    }

    #[test]
    fn equals_and_space_forms_are_the_same() {
        let a = ok(&["-data-dir=/x", "-node", "n1"]);
        assert_eq!(a.value("data-dir"), Some("/x"));
        assert_eq!(a.value("node"), Some("n1"));
        let b = ok(&["-data-dir", "/x", "--node=n1"]);
        assert_eq!(a, b);
    }

    #[test]
    fn bare_booleans_and_explicit_values() {
        let a = ok(&["-dev"]);
        assert!(a.flag("dev"));
        assert!(!a.flag("recurse"));
        assert!(!a.is_set("recurse"));
        let b = ok(&["-dev=false", "-recurse=T"]);
        assert!(!b.flag("dev"));
        assert!(b.is_set("dev"), "an explicit false is still 'set'");
        assert!(b.flag("recurse"));
        assert_eq!(
            parse(SPECS, &args(&["-dev=yes"])),
            Err(FlagError::InvalidBool {
                name: "dev".into(),
                value: "yes".into()
            })
        );
    }

    #[test]
    fn a_bool_does_not_swallow_the_next_argument() {
        let a = ok(&["-recurse", "foo/"]);
        assert!(a.flag("recurse"));
        assert_eq!(a.positionals, vec!["foo/"]);
    }

    #[test]
    fn repeated_flags_keep_every_value_and_last_scalar_wins() {
        let a = ok(&["-config-file", "a.json", "-config-file=b.json", "-node=x", "-node=y"]);
        assert_eq!(a.values("config-file"), &["a.json".to_string(), "b.json".to_string()]);
        assert_eq!(a.value("node"), Some("y"));
        assert!(a.values("data-dir").is_empty());
    }

    #[test]
    fn different_flags_keep_their_interleaving() {
        let a = ok(&["-config-file=a", "-node=n", "-data-dir=d", "-config-file=b"]);
        assert_eq!(
            a.in_order(&["config-file", "data-dir"]),
            vec![("config-file", "a"), ("data-dir", "d"), ("config-file", "b")]
        );
    }

    #[test]
    fn parsing_stops_at_first_positional_dash_and_double_dash() {
        let a = ok(&["-recurse", "key", "-dev"]);
        assert_eq!(a.positionals, vec!["key", "-dev"]);
        assert!(!a.flag("dev"));
        let b = ok(&["key", "-"]);
        assert_eq!(b.positionals, vec!["key", "-"]);
        let c = ok(&["-", "x"]);
        assert_eq!(c.positionals, vec!["-", "x"]);
        let d = ok(&["-dev", "--", "-recurse"]);
        assert_eq!(d.positionals, vec!["-recurse"]);
    }

    #[test]
    fn value_flag_takes_next_argument_even_if_it_looks_like_a_flag() {
        let a = ok(&["-separator", "-dev"]);
        assert_eq!(a.value("separator"), Some("-dev"));
        assert!(!a.flag("dev"));
        let b = ok(&["-separator="]);
        assert_eq!(b.value("separator"), Some(""));
    }

    #[test]
    fn errors_carry_go_texts() {
        let e = parse(SPECS, &args(&["-nope"])).unwrap_err();
        assert_eq!(e.to_string(), "flag provided but not defined: -nope");
        let e = parse(SPECS, &args(&["-node"])).unwrap_err();
        assert_eq!(e.to_string(), "flag needs an argument: -node");
        let e = parse(SPECS, &args(&["---x"])).unwrap_err();
        assert_eq!(e.to_string(), "bad flag syntax: ---x");
        let e = parse(SPECS, &args(&["-=x"])).unwrap_err();
        assert_eq!(e, FlagError::BadSyntax("-=x".into()));
        assert_eq!(parse(SPECS, &args(&["-h"])), Err(FlagError::HelpRequested));
        assert_eq!(parse(SPECS, &args(&["--help"])), Err(FlagError::HelpRequested));
    }

    #[test]
    fn typed_values_report_the_flag() {
        const PORT: &[FlagSpec] = &[FlagSpec::value("http-port", "port")];
        let a = parse(PORT, &args(&["-http-port=85x"])).unwrap();
        let e = a.parsed::<i32>("http-port").unwrap_err();
        assert!(e.to_string().starts_with("invalid value \"85x\" for flag -http-port"));
        let b = parse(PORT, &args(&["-http-port", "-1"])).unwrap();
        assert_eq!(b.parsed::<i32>("http-port").unwrap(), Some(-1));
        assert_eq!(ParsedArgs::default().parsed::<i32>("http-port").unwrap(), None);
    }

    #[test]
    fn usage_lists_every_flag_sorted() {
        let text = usage(SPECS);
        let config = text.find("-config-file=<value>").unwrap();
        let dev = text.find("  -dev\n").unwrap();
        assert!(config < dev);
        assert_eq!(text.matches("\n\n").count(), SPECS.len());
    }
}
