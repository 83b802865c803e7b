//! The `?filter=` path in isolation (`proconsul_dataplane::filter`):
//!
//! * `filter_eval/parse/<name>`: parsing (and compiling patterns of) an
//!   expression of the kind Traefik / consul-template / Prometheus send;
//! * `filter_eval/matches/<name>`: evaluating it over 10,000 health-service
//!   entries (tags, service meta, two checks each), reported per entry.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proconsul_dataplane::filter::{FieldValue, Filter, Selectable};

/// Entries per evaluation batch.
const ENTRIES: usize = 10_000;

/// The expressions measured, by name.
const EXPRESSIONS: [(&str, &str); 4] = [
    ("tag", r#"Service.Tags contains "primary""#),
    (
        "meta_and_tag",
        r#"ServiceMeta.env == prod and "traefik.enable=true" in Service.Tags"#,
    ),
    ("checks_any", "Checks.Status != passing or Service.Port == 8080"),
    (
        "regex",
        r#"Service.Service matches "^svc-[0-9]*7$" and not (ServiceMeta.version is empty)"#,
    ),
];

struct Check {
    status: &'static str,
}

impl Selectable for Check {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        match path {
            ["Status"] => FieldValue::Str(self.status),
            _ => FieldValue::Invalid,
        }
    }
}

/// A health-service-like entry.
struct Entry {
    service: String,
    tags: Vec<String>,
    port: u16,
    meta: BTreeMap<String, String>,
    checks: Vec<Check>,
}

impl Selectable for Entry {
    fn field(&self, path: &[&str]) -> FieldValue<'_> {
        match path {
            ["Service", "Service"] => FieldValue::Str(&self.service),
            ["Service", "Tags"] => FieldValue::StrList(&self.tags),
            ["Service", "Port"] => FieldValue::Int(i64::from(self.port)),
            ["ServiceMeta", rest @ ..] => FieldValue::from_map(&self.meta, rest),
            ["Checks", rest @ ..] => FieldValue::from_objects(&self.checks, rest),
            _ => FieldValue::Invalid,
        }
    }
}

fn entries() -> Vec<Entry> {
    (0..ENTRIES)
        .map(|i| Entry {
            service: format!("svc-{i}"),
            tags: if i % 3 == 0 {
                vec!["primary".to_string(), "traefik.enable=true".to_string()]
            } else {
                vec!["secondary".to_string()]
            },
            port: if i % 10 == 0 { 8080 } else { 80 },
            meta: BTreeMap::from([
                ("env".to_string(), if i % 2 == 0 { "prod" } else { "dev" }.to_string()),
                ("version".to_string(), format!("1.{i}")),
            ]),
            checks: vec![
                Check { status: "passing" },
                Check {
                    status: if i % 50 == 0 { "critical" } else { "passing" },
                },
            ],
        })
        .collect()
}

fn bench_filter(c: &mut Criterion) {
    let entries = entries();
    let mut parse = c.benchmark_group("filter_eval/parse");
    for (name, expr) in EXPRESSIONS {
        parse.bench_function(name, |b| b.iter(|| Filter::parse(black_box(expr)).expect("parses")));
    }
    parse.finish();

    let mut matches = c.benchmark_group("filter_eval/matches");
    matches.throughput(Throughput::Elements(ENTRIES as u64));
    for (name, expr) in EXPRESSIONS {
        let filter = Filter::parse(expr).expect("parses");
        let kept = entries.iter().filter(|entry| filter.matches(*entry)).count();
        assert!(
            kept > 0 && kept < ENTRIES,
            "{name} keeps some entries, not all ({kept})"
        );
        matches.bench_function(name, |b| {
            b.iter(|| entries.iter().filter(|entry| filter.matches(black_box(*entry))).count())
        });
    }
    matches.finish();
}

criterion_group!(benches, bench_filter);
criterion_main!(benches);
