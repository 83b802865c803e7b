//! Whole-module tests: parsing, evaluation semantics over a catalog-like
//! shape, go-bexpr's exact error messages, the limits, and a bounded
//! random-input run that must never panic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::limits::{EXPRESSION_BYTES_MAX, NESTING_DEPTH_MAX, SELECTOR_SEGMENTS_MAX};
use super::*;

struct Check {
    status: &'static str,
    name: &'static str,
}

impl Selectable for Check {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        match path {
            ["Status"] => FieldValue::Str(self.status),
            ["Name"] => FieldValue::Str(self.name),
            _ => FieldValue::Invalid,
        }
    }
}

/// A health-service-like entry.
struct Entry {
    node: &'static str,
    node_meta: BTreeMap<String, String>,
    service: &'static str,
    tags: Vec<String>,
    port: u16,
    enable_tag_override: bool,
    service_meta: BTreeMap<String, String>,
    tagged_addresses: BTreeMap<String, u16>,
    weight: f64,
    checks: Vec<Check>,
}

impl Selectable for Entry {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        match path {
            ["Node", "Node"] => FieldValue::Str(self.node),
            ["Node", "Meta", rest @ ..] => FieldValue::from_map(&self.node_meta, rest),
            ["Service", "Service"] => FieldValue::Str(self.service),
            ["Service", "Tags"] => FieldValue::StrList(&self.tags),
            ["Service", "Port"] => FieldValue::Int(i64::from(self.port)),
            ["Service", "EnableTagOverride"] => FieldValue::Bool(self.enable_tag_override),
            ["Service", "Meta", rest @ ..] | ["ServiceMeta", rest @ ..] => {
                FieldValue::from_map(&self.service_meta, rest)
            }
            ["Service", "TaggedAddresses"] => {
                FieldValue::Keys(self.tagged_addresses.keys().map(String::as_str).collect())
            }
            ["Service", "Weight"] => FieldValue::Float(self.weight),
            ["Service", "Ports"] => FieldValue::List(vec![FieldValue::Uint(80), FieldValue::Uint(443)]),
            ["Service", "Kind"] => FieldValue::String(String::new()),
            ["Checks", rest @ ..] => FieldValue::from_objects(&self.checks, rest),
            _ => FieldValue::Invalid,
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn web() -> Entry {
    Entry {
        node: "node-1",
        node_meta: meta(&[("rack", "r12"), ("os", "linux")]),
        service: "web",
        tags: strings(&["primary", "v2"]),
        port: 80,
        enable_tag_override: true,
        service_meta: meta(&[("env", "prod"), ("path", "a\tb"), ("empty", "")]),
        tagged_addresses: BTreeMap::from([("lan".to_string(), 80)]),
        weight: 1.5,
        checks: vec![
            Check {
                status: "passing",
                name: "serf",
            },
            Check {
                status: "critical",
                name: "http",
            },
        ],
    }
}

fn healthy_db() -> Entry {
    Entry {
        node: "node-2",
        node_meta: BTreeMap::new(),
        service: "db",
        tags: Vec::new(),
        port: 5432,
        enable_tag_override: false,
        service_meta: BTreeMap::new(),
        tagged_addresses: BTreeMap::new(),
        weight: 0.0,
        checks: vec![Check {
            status: "passing",
            name: "serf",
        }],
    }
}

fn no_checks() -> Entry {
    Entry {
        checks: Vec::new(),
        ..healthy_db()
    }
}

/// Evaluates `expr` (which must parse) against `item`.
fn eval(expr: &str, item: &Entry) -> bool {
    Filter::parse(expr)
        .unwrap_or_else(|e| panic!("{expr:?} must parse: {e}"))
        .matches(item)
}

fn parse_error(expr: &str) -> String {
    match Filter::parse(expr) {
        Ok(_) => panic!("{expr:?} must not parse"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn filter_is_send_sync_and_reusable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Filter>();
    let filter = Filter::parse("Service.Service == web").expect("parses");
    let (a, b) = (web(), healthy_db());
    for _ in 0..3 {
        assert!(filter.matches(&a));
        assert!(!filter.matches(&b));
    }
}

#[test]
fn empty_expression_matches_everything_but_blank_is_an_error() {
    assert!(eval("", &web()));
    assert_eq!(
        parse_error("  "),
        r#"1:3 (2): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#
    );
}

#[test]
fn selectors_are_listed_with_dots_and_indexes_alike() {
    let filter =
        Filter::parse(r#"ServiceMeta.env == prod and ServiceMeta["env"] != x or "a" in Node.Meta[ `the key` ]"#)
            .expect("parses");
    let selectors: Vec<Vec<&str>> = filter
        .selectors()
        .iter()
        .map(|path| path.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        selectors,
        [
            vec!["ServiceMeta", "env"],
            vec!["ServiceMeta", "env"],
            vec!["Node", "Meta", "the key"]
        ]
    );
}

#[test]
fn string_operators() {
    let item = web();
    assert!(eval("Service.Service == web", &item));
    assert!(eval(r#"Service.Service == "web""#, &item));
    assert!(eval("Service.Service == `web`", &item));
    assert!(!eval("Service.Service == Web", &item), "values are case-sensitive");
    assert!(eval("Service.Service != db", &item));
    assert!(
        eval("Service.Service contains eb", &item),
        "contains on a string is a substring test"
    );
    assert!(eval(r#""we" in Service.Service"#, &item));
    assert!(eval(r#""db" not in Service.Service"#, &item));
    assert!(eval("Service.Service not contains db", &item));
    assert!(eval(r#"Service.Service matches "^w.b$""#, &item));
    assert!(
        eval(r#"Service.Service matches "e""#, &item),
        "matches is unanchored, like Go's"
    );
    assert!(eval(r#"Service.Service not matches "^db""#, &item));
    assert!(eval("Service.Kind is empty", &item));
    assert!(eval("Service.Service is not empty", &item));
    assert!(eval(r#"ServiceMeta.path == "a\tb""#, &item), "escapes are Go's");
}

#[test]
fn bare_word_values_keep_their_dots() {
    let mut item = web();
    item.node = "node.example";
    assert!(eval("Node.Node == node.example", &item));
    assert!(
        eval(r#"Node.Node == node["example"]"#, &item),
        "an index joins with a dot too"
    );
}

#[test]
fn list_operators() {
    let (item, db) = (web(), healthy_db());
    assert!(eval("Service.Tags contains primary", &item));
    assert!(eval(r#""v2" in Service.Tags"#, &item));
    assert!(
        !eval("Service.Tags contains prim", &item),
        "list membership is whole elements"
    );
    assert!(eval("secondary not in Service.Tags", &item));
    assert!(eval("Service.Tags not contains secondary", &item));
    assert!(eval("Service.Tags is not empty", &item));
    assert!(eval("Service.Tags is empty", &db));
    assert!(
        eval("443 in Service.Ports", &item),
        "scalar lists coerce the literal per element"
    );
    assert!(!eval("8080 in Service.Ports", &item));
    assert!(
        !eval("Service.Tags == primary", &item),
        "== on a list is refused: never holds"
    );
    assert!(!eval("Service.Tags != primary", &item), "nor does its negation");
    assert!(!eval(r#"Service.Tags matches "p""#, &item));
}

#[test]
fn map_operators_and_missing_keys() {
    let (item, db) = (web(), healthy_db());
    assert!(eval("env in ServiceMeta", &item), "in on a map tests keys");
    assert!(!eval("prod in ServiceMeta", &item));
    assert!(eval("ServiceMeta contains env", &item));
    assert!(eval("nope not in ServiceMeta", &item));
    assert!(eval("ServiceMeta is empty", &db));
    assert!(eval("ServiceMeta.env == prod", &item));
    assert!(eval(r#"ServiceMeta["env"] == prod"#, &item));
    assert!(eval("Service.Meta.env == prod", &item));
    assert!(eval("ServiceMeta.empty is empty", &item));
    assert!(eval("lan in Service.TaggedAddresses", &item));
    assert!(!eval("wan in Service.TaggedAddresses", &item));
    // go-bexpr's not-present disposition for an absent key:
    let missing = [
        ("ServiceMeta.nope == x", false),
        ("ServiceMeta.nope != x", true),
        ("x in ServiceMeta.nope", false),
        ("x not in ServiceMeta.nope", true),
        ("ServiceMeta.nope is empty", true),
        ("ServiceMeta.nope is not empty", false),
        ("ServiceMeta.nope matches `.*`", false),
        ("ServiceMeta.nope not matches `.*`", true),
    ];
    for (expr, expected) in missing {
        assert_eq!(eval(expr, &item), expected, "{expr}");
    }
}

#[test]
fn lists_of_objects_match_if_any_element_does() {
    let (mixed, healthy, none) = (web(), healthy_db(), no_checks());
    assert!(eval("Checks.Status == critical", &mixed));
    assert!(!eval("Checks.Status == critical", &healthy));
    assert!(eval("Checks.Status == passing", &mixed));
    // Negations apply per element, then "any": some check is not passing.
    assert!(eval("Checks.Status != passing", &mixed));
    assert!(!eval("Checks.Status != passing", &healthy));
    assert!(eval("not (Checks.Status != passing)", &healthy));
    // No elements: nothing holds, negated or not.
    assert!(!eval("Checks.Status == passing", &none));
    assert!(!eval("Checks.Status != passing", &none));
    assert!(eval("Checks is empty", &none));
    assert!(eval("Checks is not empty", &mixed));
    assert!(
        eval(r#""pass" in Checks.Status"#, &healthy),
        "in on each element's string is a substring test"
    );
    assert!(eval(r#"Checks.Name matches "^ht""#, &mixed));
    assert!(
        !eval("Checks.Nope == x", &mixed),
        "an unknown field inside the list never holds"
    );
    assert!(!eval("Checks == x", &mixed), "== on a list of objects is refused");
}

#[test]
fn numbers_and_bools_coerce_the_literal_like_go() {
    let (item, db) = (web(), healthy_db());
    assert!(eval("Service.Port == 80", &item));
    assert!(eval(r#"Service.Port == "80""#, &item));
    assert!(eval(r#"Service.Port == "0x50""#, &item), "ParseInt base 0");
    assert!(eval("Service.Port != 8080", &item));
    assert!(
        !eval("Service.Port == abc", &item),
        "a literal that is not a number never compares"
    );
    assert!(!eval("Service.Port != abc", &item));
    assert!(eval("Service.Port == 5432", &db));
    assert!(eval("Service.EnableTagOverride == true", &item));
    assert!(eval("Service.EnableTagOverride == 1", &item));
    assert!(eval("Service.EnableTagOverride == True", &item));
    assert!(eval("Service.EnableTagOverride != false", &item));
    assert!(eval("Service.EnableTagOverride == false", &db));
    assert!(!eval("Service.EnableTagOverride == yes", &item));
    assert!(!eval("Service.EnableTagOverride != yes", &item));
    assert!(eval("Service.Weight == 1.5", &item));
    assert!(eval("Service.Weight != -1.5", &item));
    assert!(
        !eval("Service.Port contains 8", &item),
        "contains on a number is refused"
    );
    assert!(!eval("Service.Port is empty", &item));
}

#[test]
fn selectors_are_case_sensitive_and_unknown_fields_never_hold() {
    let item = web();
    assert!(!eval("service.service == web", &item));
    assert!(!eval("Service.service == web", &item));
    assert!(!eval("Nope != x", &item), "an unknown field is not an absent key");
    assert!(!eval("Nope is empty", &item));
    assert!(eval("not Nope == x", &item));
}

#[test]
fn boolean_structure_and_precedence() {
    let (web, db) = (web(), healthy_db());
    // not binds tighter than and, and tighter than or.
    let expr = "Service.Service == db or Service.Service == web and Service.Port == 5432";
    assert!(!eval(expr, &web));
    assert!(eval(expr, &db));
    let grouped = "(Service.Service == db or Service.Service == web) and Service.Port == 80";
    assert!(eval(grouped, &web));
    assert!(!eval(grouped, &db));
    assert!(eval("not Service.Service == db and Service.Port == 80", &web));
    assert!(!eval("not (Service.Service == web and Service.Port == 80)", &web));
    assert!(eval("not not Service.Service == web", &web));
    assert!(eval("(((Service.Service == web)))", &web));
    assert!(eval("\t\r\n Service.Service\n==\tweb \n", &web));
    assert!(eval("Service.Service==web and (Service.Port==80)", &web));
    assert_eq!(
        parse_error("Service.Service==web and(Service.Port==80)"),
        r"1:25 (24): no match found, expected: [ \t\r\n]",
        "keywords need whitespace on both sides"
    );
    let long_chain: Vec<String> = (0..150).map(|i| format!("Service.Port != {}", 1000 + i)).collect();
    assert!(
        eval(&long_chain.join(" and "), &web),
        "long flat chains are not nesting"
    );
    assert!(
        eval("not == x or Service.Service == web", &web),
        "`not` is also a selector name"
    );
}

#[test]
fn regex_errors_are_reported_at_parse() {
    let error = parse_error(r#"Service.Service matches "(""#);
    assert!(
        error.starts_with(r#"Failed to compile regular expression "(": error parsing regexp: "#),
        "{error}"
    );
    assert!(!error.contains('\n'), "one line: {error}");
    let error = parse_error(r#"Service.Service not matches "[z-a]""#);
    assert!(
        error.starts_with(r#"Failed to compile regular expression "[z-a]""#),
        "{error}"
    );
    assert!(Filter::parse(r#"Service.Service matches "\\d+""#).is_ok());
}

/// The error cases of go-bexpr's own grammar tests, with their exact text.
#[test]
fn syntax_errors_read_exactly_like_go_bexpr() {
    let cases = [
        (
            "foo == \"12x",
            r#"1:12 (11): rule "string": Unterminated string literal"#,
        ),
        (
            "foo == `12x",
            r#"1:12 (11): rule "string": Unterminated string literal"#,
        ),
        ("foo == 3x", r#"1:9 (8): rule "number": Invalid number literal"#),
        ("foo[3] == abc", r#"1:5 (4): rule "index": Invalid index"#),
        (
            "x in foo[\"abc\"",
            r#"1:15 (14): rule "index": Unclosed index expression"#,
        ),
        (
            "foo[\"abc\" == 3",
            r#"1:11 (10): rule "index": Unclosed index expression"#,
        ),
        ("x in 32", r#"1:6 (5): rule "match": Invalid selector"#),
        (
            "32 == 32",
            r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
        ),
        (
            "32 is empty",
            r#"1:4 (3): no match found, expected: "in", "not" or [ \t\r\n]"#,
        ),
        (
            "x in foo abc",
            r#"1:10 (9): no match found, expected: "and", "or", [ \t\r\n] or EOF"#,
        ),
        (
            "x in foo and ",
            r#"1:14 (13): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
        ),
        (
            "x in foo or ",
            r#"1:13 (12): no match found, expected: "(", "-", "0", "\"", "`", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#,
        ),
        (
            "x in foo or not ",
            concat!(
                r#"1:17 (16): no match found, expected: "!=", "(", "-", "0", "==", "\"", "`", "contains", "in", "#,
                r#""is", "matches", "not", [ \t\r\n], [1-9] or [a-zA-Z]"#
            ),
        ),
        ("(foo == 4", r#"1:10 (9): rule "grouping": Unmatched parentheses"#),
    ];
    for (expr, expected) in cases {
        assert_eq!(parse_error(expr), expected, "for {expr:?}");
    }
}

#[test]
fn more_syntax_errors() {
    // An unterminated key inside an index raises both errors, in order.
    assert_eq!(
        parse_error("foo[\"abc"),
        "1:9 (8): rule \"string\": Unterminated string literal\n1:5 (4): rule \"index\": Invalid index"
    );
    // Go cannot unquote this literal.
    assert_eq!(
        parse_error(r#"foo == "\q""#),
        r#"1:8 (7): rule "string": invalid syntax"#
    );
    // Positions count lines and characters.
    assert_eq!(
        parse_error("a == b and\n  c"),
        r#"2:4 (14): no match found, expected: "!=", ".", "==", "[", [ \t\r\n] or [a-zA-Z0-9_]"#
    );
    assert_eq!(
        parse_error("foo == 3)"),
        r#"1:9 (8): no match found, expected: ".", [ \t\r\n], [0-9] or EOF"#
    );
    assert_eq!(
        parse_error("Service.Tags contains"),
        r#"1:22 (21): no match found, expected: [ \t\r\n]"#
    );
    // A bare value stops at characters an identifier cannot hold.
    assert_eq!(
        parse_error("Node.Node == node-1"),
        r#"1:18 (17): no match found, expected: ".", "[", [ \t\r\n], [a-zA-Z0-9_] or EOF"#
    );
}

#[test]
fn error_body_has_consul_prefix() {
    let error = Filter::parse("(foo == 4").expect_err("unbalanced");
    assert_eq!(
        error_body(&error),
        "Failed to create boolean expression evaluator: 1:10 (9): rule \"grouping\": Unmatched parentheses"
    );
}

#[test]
fn limit_expression_length() {
    let padding = " ".repeat(EXPRESSION_BYTES_MAX - "a == b".len());
    assert!(Filter::parse(&format!("a == b{padding}")).is_ok());
    let too_long = format!("a == b{padding} ");
    assert_eq!(
        Filter::parse(&too_long).expect_err("too long"),
        FilterError::TooLong { len_bytes: 4097 }
    );
}

#[test]
fn limit_nesting_depth() {
    let nested = |depth: usize| format!("{}a == b{}", "(".repeat(depth), ")".repeat(depth));
    assert!(Filter::parse(&nested(NESTING_DEPTH_MAX)).is_ok());
    assert_eq!(
        Filter::parse(&nested(NESTING_DEPTH_MAX + 1)).expect_err("too deep"),
        FilterError::TooDeep
    );
    let nots = |depth: usize| format!("{}a == b", "not ".repeat(depth));
    assert!(Filter::parse(&nots(NESTING_DEPTH_MAX)).is_ok());
    assert_eq!(
        Filter::parse(&nots(NESTING_DEPTH_MAX + 1)).expect_err("too deep"),
        FilterError::TooDeep
    );
    // Unbalanced deep input stops at the limit too, not at a stack overflow.
    assert_eq!(
        Filter::parse(&"(".repeat(4000)).expect_err("too deep"),
        FilterError::TooDeep
    );
    assert_eq!(
        Filter::parse(&"not ".repeat(1000)).expect_err("too deep"),
        FilterError::TooDeep
    );
}

#[test]
fn limit_selector_segments() {
    let selector = |segments: usize| vec!["a"; segments].join(".");
    assert!(Filter::parse(&format!("{} == x", selector(SELECTOR_SEGMENTS_MAX))).is_ok());
    assert_eq!(
        Filter::parse(&format!("{} == x", selector(SELECTOR_SEGMENTS_MAX + 1))).expect_err("too long"),
        FilterError::SelectorTooLong
    );
    let indexed = format!("a{} == x", r#"["k"]"#.repeat(SELECTOR_SEGMENTS_MAX));
    assert_eq!(
        Filter::parse(&indexed).expect_err("too long"),
        FilterError::SelectorTooLong
    );
}

#[test]
fn limit_regex_size() {
    let error = Filter::parse(r"a matches `(\w{100}){100}`").expect_err("compiles too big");
    match &error {
        FilterError::Regex { pattern, reason } => {
            assert_eq!(pattern, r"(\w{100}){100}");
            assert!(reason.contains("too large"), "{reason}");
        }
        other => panic!("expected a regex error, got {other:?}"),
    }
    let deep = format!("a matches `{}x{}`", "(".repeat(100), ")".repeat(100));
    assert!(
        matches!(Filter::parse(&deep), Err(FilterError::Regex { .. })),
        "regex nesting is bounded"
    );
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n fits usize")
    }
}

#[test]
fn random_and_truncated_input_never_panics() {
    const PIECES: [&str; 40] = [
        "Service",
        ".",
        "Tags",
        "Checks",
        "Status",
        "ServiceMeta",
        "[",
        "]",
        "\"",
        "`",
        "\\",
        "(",
        ")",
        " ",
        "\t",
        "\n",
        "==",
        "!=",
        "=",
        "!",
        "in",
        "not",
        "contains",
        "matches",
        "is",
        "empty",
        "and",
        "or",
        "-",
        "0",
        "7",
        "3.5",
        "x",
        "é",
        "\"env\"",
        "`a`",
        "\"\\x41\"",
        "\"(\"",
        "_",
        "\u{0}",
    ];
    let seeds = [
        r#"Service.Tags contains "a" and not (ServiceMeta["env"] == prod or Checks.Status != passing)"#,
        r#""x" not in Service.Tags or Service.Port == -3.5 and ServiceMeta.k matches `^a.*`"#,
        "(((Checks is not empty)))",
    ];
    let item = web();
    let started = Instant::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0usize;
    for round in 0..20_000 {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        let text: String = if round % 4 == 0 {
            let seed = seeds[rng.below(seeds.len())];
            let cut = rng.below(seed.len() + 1);
            let boundary = (0..=cut).rev().find(|&i| seed.is_char_boundary(i)).unwrap_or(0);
            seed[..boundary].to_string()
        } else {
            (0..1 + rng.below(24))
                .map(|_| PIECES[rng.below(PIECES.len())])
                .collect()
        };
        if let Ok(filter) = Filter::parse(&text) {
            parsed += 1;
            let _ = filter.matches(&item);
        }
    }
    assert!(parsed > 0, "some random inputs are valid expressions");
    for seed in seeds {
        assert!(Filter::parse(seed).is_ok(), "{seed}");
    }
}
