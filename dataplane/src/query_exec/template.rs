//! Prepared query templates (`Template.Type = name_prefix_match`): checking
//! a template when it is written and rendering it for the name it is
//! executed by. Pure.
//!
//! Every text field of the query's `Service` and `DNS` may interpolate
//! `${name.full}` (the name executed), `${name.prefix}` (the template's
//! name), `${name.suffix}` (the rest), `${match(N)}` (group N of `Regexp`
//! matched against the full name; empty when there is no such group or no
//! match) and `${agent.segment}` (always empty: no network segments).
//! `$${` writes a literal `${`.

use proconsul_shared::state::{PreparedQuery, TEMPLATE_TYPE_NAME_PREFIX_MATCH};
use regex::Regex;

/// Longest `Regexp` accepted, in bytes (the regex engine also bounds its
/// compiled size).
pub const TEMPLATE_REGEXP_BYTES_MAX: usize = 4096;
/// Compiled-program size bound for a template's `Regexp`.
const REGEXP_COMPILED_BYTES_MAX: usize = 1 << 20;

/// The values a template renders with.
#[derive(Debug, Default)]
struct Vars<'a> {
    full: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    segment: &'a str,
    matches: Vec<String>,
}

/// Checks a template as Consul's state store compiles it; `Err` is
/// Consul's text without its `failed compiling template: ` prefix. A
/// query that is not a template always passes.
pub fn check(query: &PreparedQuery) -> Result<(), String> {
    if !query.is_template() {
        return Ok(());
    }
    compile(query)?;
    let vars = Vars::default();
    let mut failure = None;
    let mut probe = query.clone();
    for_each_text(&mut probe, |text| {
        if failure.is_none() {
            if let Err(e) = interpolate(text, &vars) {
                failure = Some(format!("Bad format '{text}' in template: {e}"));
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// The template's `Regexp`, compiled (`None` when empty).
fn compile(query: &PreparedQuery) -> Result<Option<Regex>, String> {
    if query.template.template_type != TEMPLATE_TYPE_NAME_PREFIX_MATCH {
        return Err(format!("Bad Template.Type '{}'", query.template.template_type));
    }
    let pattern = &query.template.regexp;
    if pattern.is_empty() {
        return Ok(None);
    }
    if pattern.len() > TEMPLATE_REGEXP_BYTES_MAX {
        return Err(format!("Bad Regexp: longer than {TEMPLATE_REGEXP_BYTES_MAX} bytes"));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEXP_COMPILED_BYTES_MAX)
        .build()
        .map(Some)
        .map_err(|e| format!("Bad Regexp: {e}"))
}

/// Renders `template` for the executed `name` (which it prefixes); `Err`
/// when the stored template no longer compiles (never for one that was
/// checked when written).
pub fn render(template: &PreparedQuery, name: &str) -> Result<PreparedQuery, String> {
    let re = compile(template)?;
    let prefix = template.name.as_str();
    let suffix = name.get(prefix.len()..).unwrap_or("");
    let matches = re
        .and_then(|re| {
            re.captures(name).map(|caps| {
                caps.iter()
                    .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                    .collect()
            })
        })
        .unwrap_or_default();
    let vars = Vars {
        full: name,
        prefix,
        suffix,
        segment: "",
        matches,
    };
    let mut rendered = template.clone();
    let mut failure = None;
    for_each_text(&mut rendered, |text| match interpolate(text, &vars) {
        Ok(out) => *text = out,
        Err(e) => {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if rendered.template.remove_empty_tags {
        rendered.service.tags.retain(|t| !t.is_empty());
    }
    Ok(rendered)
}

/// Visits every text field a template may interpolate.
fn for_each_text(query: &mut PreparedQuery, mut visit: impl FnMut(&mut String)) {
    let s = &mut query.service;
    visit(&mut s.service);
    visit(&mut s.near);
    visit(&mut s.peer);
    s.tags.iter_mut().for_each(&mut visit);
    s.ignore_check_ids.iter_mut().for_each(&mut visit);
    s.failover.datacenters.iter_mut().for_each(&mut visit);
    s.node_meta.values_mut().for_each(&mut visit);
    s.service_meta.values_mut().for_each(&mut visit);
    visit(&mut query.dns_ttl);
}

/// Replaces every `${...}` in `text`.
fn interpolate(text: &str, vars: &Vars<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` is an escaped `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("unterminated interpolation".into());
        };
        out.push_str(&value(after[..end].trim(), vars)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one interpolated expression.
fn value(expr: &str, vars: &Vars<'_>) -> Result<String, String> {
    match expr {
        "name.full" => return Ok(vars.full.to_string()),
        "name.prefix" => return Ok(vars.prefix.to_string()),
        "name.suffix" => return Ok(vars.suffix.to_string()),
        "agent.segment" => return Ok(vars.segment.to_string()),
        _ => {}
    }
    let Some(arg) = expr.strip_prefix("match(").and_then(|a| a.strip_suffix(')')) else {
        return Err(format!("unknown variable accessed: {expr}"));
    };
    let group: usize = arg
        .trim()
        .parse()
        .map_err(|_| format!("match() needs an integer group, got {arg:?}"))?;
    Ok(vars.matches.get(group).cloned().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proconsul_shared::state::{QueryTemplate, ServiceQuery};

    fn template(name: &str, regexp: &str, service: &str, tags: &[&str]) -> PreparedQuery {
        PreparedQuery {
            id: "11111111-2222-3333-4444-555555555555".into(),
            name: name.into(),
            template: QueryTemplate {
                template_type: TEMPLATE_TYPE_NAME_PREFIX_MATCH.into(),
                regexp: regexp.into(),
                remove_empty_tags: false,
            },
            service: ServiceQuery {
                service: service.into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                ..ServiceQuery::default()
            },
            ..PreparedQuery::default()
        }
    }

    #[test]
    fn renders_name_parts_and_regexp_groups() {
        let t = template(
            "geo-db-",
            r"^geo-db-(.*?)-([^\-]+?)$",
            "mysql-${match(1)}",
            &[
                "${match(2)}",
                "${name.full}",
                "${name.prefix}|${name.suffix}",
                "${agent.segment}x",
            ],
        );
        let r = render(&t, "geo-db-customer-primary").unwrap();
        assert_eq!(r.service.service, "mysql-customer");
        assert_eq!(
            r.service.tags,
            ["primary", "geo-db-customer-primary", "geo-db-|customer-primary", "x"]
        );
    }

    #[test]
    fn missing_groups_render_empty_and_remove_empty_tags_drops_them() {
        let mut t = template(
            "web-",
            r"^web-(\d+)$",
            "${name.suffix}",
            &["v${match(1)}", "${match(7)}"],
        );
        let r = render(&t, "web-abc").unwrap();
        assert_eq!(
            (r.service.service.as_str(), r.service.tags.clone()),
            ("abc", vec!["v".to_string(), String::new()])
        );
        t.template.remove_empty_tags = true;
        assert_eq!(render(&t, "web-abc").unwrap().service.tags, ["v"]);
    }

    #[test]
    fn escaped_interpolation_stays_literal() {
        let t = template("", "", "a$${name.full}b${name.full}", &[]);
        assert_eq!(render(&t, "x").unwrap().service.service, "a${name.full}bx");
    }

    #[test]
    fn check_refuses_bad_types_regexps_and_formats_with_consuls_texts() {
        let mut t = template("web-", "", "${name.suffix}", &[]);
        assert_eq!(check(&t), Ok(()));
        t.template.template_type = "prefix".into();
        assert_eq!(check(&t), Err("Bad Template.Type 'prefix'".into()));
        let bad_re = template("web-", "(unclosed", "x", &[]);
        assert!(check(&bad_re).unwrap_err().starts_with("Bad Regexp: "));
        let long_re = template("web-", &"a".repeat(TEMPLATE_REGEXP_BYTES_MAX + 1), "x", &[]);
        assert!(check(&long_re).unwrap_err().contains("longer than"));
        let bad_var = template("web-", "", "${nope}", &[]);
        assert_eq!(
            check(&bad_var),
            Err("Bad format '${nope}' in template: unknown variable accessed: nope".into())
        );
        let open = template("web-", "", "${name.full", &[]);
        assert!(check(&open).unwrap_err().contains("unterminated"));
        let plain = PreparedQuery {
            template: QueryTemplate::default(),
            ..bad_var
        };
        assert_eq!(check(&plain), Ok(()), "plain queries are not interpolated");
    }
}
