//! `docs/report.schema.json` describes what `farewatch check --format json`
//! really prints: real reports (routes, rejected rows, warnings, failed
//! lookups, watched flights) are validated against it. The schema forbids
//! unknown fields, so a field added to the report without the schema fails
//! here.

mod common;

use std::path::Path;

use common::days_from_today;
use serde_json::Value;

/// Checks `value` against `schema`, for the keywords the schema uses
/// (`type`, `enum`, `properties`, `required`, `additionalProperties`,
/// `items`, `$ref` into `$defs`). Returns every violation with its path.
fn validate(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("local $ref");
        return validate(root, &root["$defs"][name], value, path, out);
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type in schema at {path}"),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = kinds.contains(&actual) || (actual == "integer" && kinds.contains(&"number"));
        if !ok {
            out.push(format!("{path}: {actual} where the schema says {kinds:?}"));
            return;
        }
    }
    if let Value::Object(fields) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !fields.contains_key(name) {
                out.push(format!("{path}: `{name}` is required"));
            }
        }
        for (name, field) in fields {
            let at = format!("{path}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => validate(root, sub, field, &at, out),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{at}: not in the schema")),
                    Some(sub @ Value::Object(_)) => validate(root, sub, field, &at, out),
                    _ => {}
                },
            }
        }
    }
    if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(root, sub, item, &format!("{path}[{i}]"), out);
        }
    }
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[track_caller]
fn assert_valid(report: &Value) {
    let schema = schema();
    let mut problems = Vec::new();
    validate(&schema, &schema, report, "$", &mut problems);
    assert!(problems.is_empty(), "{problems:#?}\nin {report:#}");
}

/// `farewatch check --format json ARGS` in `dir`, its report.
fn report(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Value {
    let output = common::binary::offline(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["check", "--format", "json", "--no-progress"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn the_demo_report_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let json = report(dir.path(), &["--demo"], &[]);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["cheapest"].is_object()));
    assert_valid(&json);
}

#[test]
fn rejected_rows_warnings_failed_lookups_and_flights_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let day = days_from_today(30);
    let today = days_from_today(0);
    std::fs::write(
        dir.path().join("routes.csv"),
        format!(
            "origin,destination,depart_date,max_price,currency,phone,colour\n\
             LHR,JFK,{day},450,GBP,+442079460123,blue\n\
             L1,JFK,someday,-5,GBP,+442079460123,red\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("flights.csv"),
        format!("flight,date,phone\nLH902,{today},+442079460123\nLH2020,{today},+442079460123\n"),
    )
    .unwrap();
    let json = report(dir.path(), &["--demo", "--flights", "flights.csv"], &[]);
    assert!(!json["invalid_rows"].as_array().unwrap().is_empty());
    assert!(!json["warnings"].as_array().unwrap().is_empty());
    assert!(!json["flights"].as_array().unwrap().is_empty());
    assert_valid(&json);

    // A source that cannot be reached: every route has errors.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let json = report(
        dir.path(),
        &["--dry-run"],
        &[
            ("SERPAPI_API_KEY", "k".to_owned()),
            ("SERPAPI_BASE_URL", format!("http://127.0.0.1:{closed}")),
            ("DATABASE_URL", "sqlite::memory:".to_owned()),
        ],
    );
    assert!(json["routes"][0]["errors"].is_array(), "{json:#}");
    assert_valid(&json);
}

#[test]
fn the_validator_rejects_what_the_schema_does_not_describe() {
    let mut json = report(tempfile::tempdir().unwrap().path(), &["--demo"], &[]);
    json["routes"][0]["surprise"] = Value::from(1);
    json["summary"]["routes"] = Value::from("six");
    let schema = schema();
    let mut problems = Vec::new();
    validate(&schema, &schema, &json, "$", &mut problems);
    assert_eq!(problems.len(), 2, "{problems:#?}");
}
