//! The JSON Schemas in deploy/schema/ describe exactly what `paperboy::message` serializes: every sample
//! validates, every serialized field is declared, `required` is exactly the set of fields that are always
//! serialized, and nullable fields are exactly those serialized as `null`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use paperboy::dedup::content_hash;
use paperboy::message::{
    now_rfc3339, Article, Job, Outcome, OutcomeKind, PageKind, OUTCOME_SCHEMA_VERSION,
    SCHEMA_VERSION,
};
use serde_json::{json, Map, Value};

fn schema(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/schema")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    if let Err(e) = jsonschema::meta::validate(&v) {
        panic!("{name}.json is not a valid JSON Schema: {e}");
    }
    assert_eq!(
        v["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}.json: draft 2020-12"
    );
    v
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles")
}

fn assert_valid(name: &str, v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} does not match its schema: {errors:#?}\n{instance:#}"
    );
}

fn meta() -> Map<String, Value> {
    json!({"campaign": "test", "n": 1, "nested": {"a": [1, 2]}})
        .as_object()
        .unwrap()
        .clone()
}

fn article_full() -> Article {
    Article {
        schema: SCHEMA_VERSION.into(),
        job_id: "job-1".into(),
        url: "https://www.example.co.uk/news/1?utm=x".into(),
        final_url: "https://www.example.co.uk/news/1".into(),
        canonical_url: "https://example.co.uk/news/1".into(),
        fetched_at: now_rfc3339(),
        http_status: 200,
        title: Some("Council approves plan".into()),
        authors: vec!["Anna Berg".into(), "Li Wei".into()],
        published_at: Some("2024-03-05T09:30:00+01:00".into()),
        modified_at: Some("2024-03-05T10:00:00+01:00".into()),
        language: "pt-BR".into(),
        site_name: Some("Example".into()),
        description: Some("Summary".into()),
        image: Some("https://example.co.uk/a.jpg".into()),
        text: "First paragraph.\n\nSecond paragraph.".into(),
        word_count: 4,
        content_hash: content_hash("First paragraph.\n\nSecond paragraph."),
        page_kind: PageKind::Article,
        near_duplicate_of: Some(content_hash("other")),
        meta: Some(meta()),
    }
}

fn article_minimal() -> Article {
    Article {
        title: None,
        authors: vec![],
        published_at: None,
        modified_at: None,
        language: "und".into(),
        site_name: None,
        description: None,
        image: None,
        page_kind: PageKind::Listing,
        near_duplicate_of: None,
        meta: None,
        ..article_full()
    }
}

fn outcome_full() -> Outcome {
    Outcome {
        schema: OUTCOME_SCHEMA_VERSION.into(),
        job_id: "job-2".into(),
        url: "https://example.com/a".into(),
        outcome: OutcomeKind::Duplicate,
        reason: "duplicate".into(),
        detail: "same text as job job-1".into(),
        at: now_rfc3339(),
        final_url: Some("https://example.com/a".into()),
        http_status: Some(200),
        content_hash: Some(content_hash("x")),
        attempts: 1,
        meta: Some(meta()),
    }
}

fn outcome_minimal() -> Outcome {
    Outcome {
        outcome: OutcomeKind::Failed,
        reason: "invalid_url".into(),
        detail: "url scheme \"ftp\" is not fetched".into(),
        final_url: None,
        http_status: None,
        content_hash: None,
        attempts: 3,
        meta: None,
        ..outcome_full()
    }
}

fn job_full() -> Job {
    Job {
        url: "https://example.com/a".into(),
        id: Some("job-3".into()),
        meta: Some(meta()),
    }
}

fn job_minimal() -> Job {
    Job {
        url: "https://example.com/a".into(),
        id: None,
        meta: None,
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

fn type_allows_null(prop: &Value) -> bool {
    match &prop["type"] {
        Value::String(t) => t == "null",
        Value::Array(ts) => ts.iter().any(|t| t == "null"),
        _ => false,
    }
}

/// The schema declares exactly the fields of the struct, with the right `required` set and nullability.
fn check_fields(name: &str, schema: &Value, full: &Value, minimal: &Value) {
    let declared = keys(&schema["properties"]);
    let serialized_full = keys(full);
    let undeclared: Vec<_> = serialized_full.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "{name}: serialized but not in the schema: {undeclared:?}"
    );
    let stale: Vec<_> = declared.difference(&serialized_full).collect();
    assert!(
        stale.is_empty(),
        "{name}: in the schema but never serialized: {stale:?}"
    );

    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        required,
        keys(minimal),
        "{name}: `required` must be exactly the fields serialized even when empty"
    );
    for (k, v) in minimal.as_object().unwrap() {
        let prop = &schema["properties"][k];
        assert_eq!(
            type_allows_null(prop),
            v.is_null(),
            "{name}.{k}: the schema's nullability must match what is serialized ({v})"
        );
    }
}

#[test]
fn article_schema_matches_the_struct() {
    let s = schema("article");
    let v = validator(&s);
    let full = serde_json::to_value(article_full()).unwrap();
    let minimal = serde_json::to_value(article_minimal()).unwrap();
    assert_valid("article (full)", &v, &full);
    assert_valid("article (minimal)", &v, &minimal);
    for kind in [PageKind::Article, PageKind::Listing, PageKind::Other] {
        let a = Article {
            page_kind: kind,
            ..article_minimal()
        };
        assert_valid(
            "article (page kinds)",
            &v,
            &serde_json::to_value(a).unwrap(),
        );
    }
    check_fields("article", &s, &full, &minimal);

    // The schema rejects what the struct cannot produce.
    let mut bad = full.clone();
    bad.as_object_mut().unwrap().remove("text");
    assert!(!v.is_valid(&bad), "missing text");
    let mut bad = full.clone();
    bad["page_kind"] = json!("blog");
    assert!(!v.is_valid(&bad), "unknown page_kind");
    let mut bad = full.clone();
    bad["content_hash"] = json!("sha1:abc");
    assert!(!v.is_valid(&bad), "bad content_hash");
    let mut bad = full.clone();
    bad["schema"] = json!("paperboy.article/2");
    assert!(!v.is_valid(&bad), "other schema version");
    let mut bad = full;
    bad["near_duplicate_of"] = Value::Null;
    assert!(!v.is_valid(&bad), "near_duplicate_of is absent, never null");
}

#[test]
fn outcome_schema_matches_the_struct() {
    let s = schema("outcome");
    let v = validator(&s);
    let full = serde_json::to_value(outcome_full()).unwrap();
    let minimal = serde_json::to_value(outcome_minimal()).unwrap();
    assert_valid("outcome (full)", &v, &full);
    assert_valid("outcome (minimal)", &v, &minimal);
    for kind in [
        OutcomeKind::Duplicate,
        OutcomeKind::Skipped,
        OutcomeKind::Failed,
    ] {
        let o = Outcome {
            outcome: kind,
            ..outcome_minimal()
        };
        assert_valid("outcome (kinds)", &v, &serde_json::to_value(o).unwrap());
    }
    check_fields("outcome", &s, &full, &minimal);
    let mut bad = full;
    bad["outcome"] = json!("article");
    assert!(!v.is_valid(&bad), "unknown outcome kind");
}

#[test]
fn job_schema_matches_the_struct_and_the_decoder() {
    let s = schema("job");
    let v = validator(&s);
    let full = serde_json::to_value(job_full()).unwrap();
    let minimal = serde_json::to_value(job_minimal()).unwrap();
    assert_valid("job (full)", &v, &full);
    assert_valid("job (minimal)", &v, &minimal);
    // Jobs are input: besides what Job serializes, the decoder accepts null id/meta. Same for the schema.
    let declared = keys(&s["properties"]);
    assert_eq!(declared, keys(&full), "job: declared fields");
    assert_eq!(
        keys(&minimal),
        ["url".to_string()].into(),
        "job: only url is always serialized"
    );
    let required: Vec<&str> = s["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["url"]);

    // Everything the schema accepts, the decoder accepts, and the other way round for these samples.
    for body in [
        json!({"url": "https://example.com/x"}),
        json!({"url": "https://example.com/x", "id": null, "meta": null}),
        json!({"url": "https://example.com/x", "id": "42", "meta": {"k": [1]}}),
    ] {
        assert_valid("job body", &v, &body);
        let bytes = serde_json::to_vec(&body).unwrap();
        Job::decode(&bytes, Some("application/json"))
            .expect("decoder accepts what the schema accepts");
    }
    for body in [
        json!({"id": "x"}),
        json!({"url": 5}),
        json!("https://example.com/x"),
    ] {
        assert!(!v.is_valid(&body), "{body}");
        let bytes = serde_json::to_vec(&body).unwrap();
        assert!(
            Job::decode(&bytes, Some("application/json")).is_err(),
            "decoder refuses what the schema refuses: {body}"
        );
    }
}
