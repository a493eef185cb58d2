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
        extraction_confidence: 0.93,
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
        extraction_confidence: 0.41,
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
        expansion: Some(paperboy::message::ExpansionCounts {
            source: "feed".into(),
            items: 12,
            new: 3,
            seen: 7,
            sitemaps: 0,
            too_old: 1,
            other_host: 0,
            over_limit: 1,
            invalid: 0,
        }),
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
        expansion: None,
        ..outcome_full()
    }
}

fn job_full() -> Job {
    Job {
        url: "https://example.com/a".into(),
        id: Some("job-3".into()),
        meta: Some(meta()),
        force: true,
        kind: Some(paperboy::message::JobKind::Page),
        parent: Some("https://example.com/feed.xml".into()),
        item: Some(paperboy::message::ItemMeta {
            title: Some("A title".into()),
            published_at: Some("2026-12-07T08:00:00Z".into()),
            authors: vec!["Ana Lima".into()],
        }),
        depth: 1,
    }
}

fn job_minimal() -> Job {
    Job::for_url("https://example.com/a")
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
            extraction_confidence: 0.5,
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

// ---------------------------------------------------------------------------------------------------
// deploy/asyncapi.yaml

fn asyncapi() -> Value {
    let text = std::fs::read_to_string(root().join("deploy/asyncapi.yaml")).unwrap();
    serde_norway::from_str(&text).expect("asyncapi.yaml parses")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Follow a `$ref`: `#/json/pointer` inside the document, or a file relative to deploy/.
fn resolve<'a>(doc: &'a Value, r: &str, files: &'a mut Vec<Value>) -> Value {
    if let Some(ptr) = r.strip_prefix('#') {
        let v = doc
            .pointer(ptr)
            .unwrap_or_else(|| panic!("$ref {r} does not resolve"));
        return v.clone();
    }
    let p = root().join("deploy").join(r);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("$ref {r}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("$ref {r}: {e}"));
    files.push(v.clone());
    v
}

fn all_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    all_refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| all_refs(v, out)),
        _ => {}
    }
}

/// A channel's `bindings.amqp`, following a `$ref` (allowed on the whole `bindings` object).
fn channel_amqp(doc: &Value, channel: &Value) -> Value {
    let b = &channel["bindings"];
    let b = match b["$ref"].as_str() {
        Some(r) => resolve(doc, r, &mut Vec::new()),
        None => b.clone(),
    };
    b["amqp"].clone()
}

/// `article.{language}.{site}` -> regex for one routing key, each parameter one word.
fn address_regex(address: &str) -> regex::Regex {
    let mut re = String::from("^");
    for (i, part) in address.split('.').enumerate() {
        if i > 0 {
            re.push_str("\\.");
        }
        if part.starts_with('{') && part.ends_with('}') {
            re.push_str("[a-z0-9_-]+");
        } else {
            re.push_str(&regex::escape(part));
        }
    }
    re.push('$');
    regex::Regex::new(&re).unwrap()
}

#[test]
fn asyncapi_document_matches_the_config_the_schemas_and_the_routing_keys() {
    let doc = asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let s =
        paperboy::config::Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap();

    // Every $ref resolves; payloads are the schema files.
    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    let mut files = Vec::new();
    for r in &refs {
        resolve(&doc, r, &mut files);
    }
    for name in ["job", "article", "outcome"] {
        assert_eq!(
            doc["components"]["messages"][name]["payload"]["$ref"],
            format!("./schema/{name}.json"),
            "message {name} payload"
        );
    }

    let channels = doc["channels"].as_object().unwrap();
    assert_eq!(channels["jobs"]["address"], s.amqp.jobs_queue.as_str());
    assert_eq!(
        channel_amqp(&doc, &channels["jobs"])["queue"]["name"],
        s.amqp.jobs_queue.as_str()
    );
    let sharded = channel_amqp(&doc, &channels["shardedJobs"]);
    assert_eq!(
        sharded["exchange"]["name"],
        paperboy::amqp::Topology::from_settings(&s)
            .shard_exchange()
            .as_str()
    );
    assert_eq!(
        sharded["exchange"]["type"],
        paperboy::amqp::SHARD_EXCHANGE_TYPE
    );
    assert_eq!(
        channels["deadLetters"]["address"],
        s.amqp.dead_letter_queue.as_str()
    );
    for name in ["articles", "outcomes", "duplicates"] {
        let b = channel_amqp(&doc, &channels[name]);
        assert_eq!(b["is"], "routingKey", "{name}");
        assert_eq!(
            b["exchange"]["name"],
            s.amqp.output_exchange.as_str(),
            "{name}"
        );
        assert_eq!(b["exchange"]["type"], "topic", "{name}");
    }

    // The routing keys the code produces match the channel addresses.
    let article =
        serde_json::from_value::<Article>(serde_json::to_value(article_full()).unwrap()).unwrap();
    let re = address_regex(channels["articles"]["address"].as_str().unwrap());
    assert!(
        re.is_match(&article.routing_key()),
        "{}",
        article.routing_key()
    );
    let kinds: Vec<&str> = channels["outcomes"]["parameters"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let re = address_regex(channels["outcomes"]["address"].as_str().unwrap());
    for (kind, reason) in [
        (OutcomeKind::Skipped, "not_html"),
        (OutcomeKind::Failed, "http_404"),
    ] {
        let o = Outcome {
            outcome: kind,
            reason: reason.into(),
            ..outcome_minimal()
        };
        assert!(re.is_match(&o.routing_key()), "{}", o.routing_key());
        assert!(kinds.contains(&kind.as_str()));
    }
    let dup = Outcome {
        outcome: OutcomeKind::Duplicate,
        ..outcome_minimal()
    };
    assert_eq!(
        channels["duplicates"]["address"],
        dup.routing_key().as_str()
    );

    // Operations point at channels, with messages of those channels.
    for (name, op) in doc["operations"].as_object().unwrap() {
        let ch_ref = op["channel"]["$ref"].as_str().unwrap();
        let ch_name = ch_ref.strip_prefix("#/channels/").unwrap();
        assert!(channels.contains_key(ch_name), "{name}");
        for m in op["messages"].as_array().unwrap() {
            let r = m["$ref"].as_str().unwrap();
            assert!(r.starts_with(&format!("{ch_ref}/messages/")), "{name}: {r}");
        }
    }
    let actions: BTreeSet<(String, String)> = doc["operations"]
        .as_object()
        .unwrap()
        .values()
        .map(|op| {
            (
                op["action"].as_str().unwrap().to_string(),
                op["channel"]["$ref"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(actions.contains(&("receive".into(), "#/channels/jobs".into())));
    assert!(actions.contains(&("send".into(), "#/channels/articles".into())));
    assert!(actions.contains(&("send".into(), "#/channels/outcomes".into())));
}

/// AsyncAPI tools read payloads as draft-07 Schema Objects: keep the schema files to keywords that mean
/// the same in draft-07 and 2020-12.
#[test]
fn schemas_use_only_draft07_compatible_keywords() {
    const ALLOWED: &[&str] = &[
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "required",
        "properties",
        "const",
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "items",
        "additionalProperties",
    ];
    fn walk(name: &str, v: &Value, in_properties: bool) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                if in_properties {
                    walk(name, v, false);
                    continue;
                }
                assert!(
                    ALLOWED.contains(&k.as_str()),
                    "{name}.json uses keyword {k}"
                );
                walk(name, v, k == "properties");
            }
        }
    }
    for name in ["job", "article", "outcome"] {
        walk(name, &schema(name), false);
    }
}

// ---------------------------------------------------------------------------------------------------
// docs/examples/consumer.{py,js}: bounded runs against the real broker.

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Without the example's client library the test is skipped on a developer machine, but fails where
/// `PAPERBOY_REQUIRE_EXAMPLES` is set (`.ci/run` installs the libraries and sets it).
fn skip_or_fail(why: &str) {
    if std::env::var_os("PAPERBOY_REQUIRE_EXAMPLES").is_some() {
        panic!("{why}, and PAPERBOY_REQUIRE_EXAMPLES is set");
    }
    eprintln!("SKIP: {why}");
}

/// Whether `program args…` exits 0 (used to skip when pika / amqplib are not installed).
fn works(program: &str, args: &[&str], dir: &std::path::Path) -> bool {
    std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Run one example consumer bound to a throw-away exchange with `article.#` and `--max 2`; publish one
/// outcome (not matched) and two articles; return its exit code and output.
async fn run_consumer(program: &str, script: &str) -> (Option<i32>, String, String) {
    use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions};
    use lapin::types::{FieldTable, ShortString};
    use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let exchange = format!("paperboy-test-{}", uuid::Uuid::new_v4().simple());
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ must run for this test (AMQP_URL)");
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        ShortString::from(exchange.as_str()),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let mut child = tokio::process::Command::new(program)
        .arg(root().join("docs/examples").join(script))
        .args(["article.#", "--url", &amqp_url(), "--exchange", &exchange])
        .args(["--max", "2", "--timeout", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut err_text = String::new();
    // Publish only once the consumer's queue is bound.
    let bound = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut line = String::new();
        while stderr.read_line(&mut line).await.unwrap_or(0) > 0 {
            err_text.push_str(&line);
            if line.contains("bound") {
                return true;
            }
            line.clear();
        }
        false
    })
    .await
    .unwrap_or(false);

    if bound {
        let mut article2 = article_full();
        article2.title = Some("Second story".into());
        let outcome = outcome_minimal();
        let messages = [
            (outcome.routing_key(), serde_json::to_vec(&outcome).unwrap()),
            (
                article_full().routing_key(),
                serde_json::to_vec(&article_full()).unwrap(),
            ),
            (
                article2.routing_key(),
                serde_json::to_vec(&article2).unwrap(),
            ),
        ];
        for (key, body) in messages {
            ch.basic_publish(
                ShortString::from(exchange.as_str()),
                ShortString::from(key.as_str()),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_content_type(ShortString::from("application/json")),
            )
            .await
            .unwrap();
        }
    }
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("consumer exits by itself")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest).await;
    err_text.push_str(&rest);
    ch.exchange_delete(ShortString::from(exchange.as_str()), Default::default())
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
    (status.code(), out, err_text)
}

fn check_consumer_output(name: &str, (code, out, err): (Option<i32>, String, String)) {
    assert_eq!(
        code,
        Some(0),
        "{name} exit status; stderr:\n{err}\nstdout:\n{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "{name} prints the two articles only:\n{out}"
    );
    assert!(
        lines[0].starts_with("Council approves plan\thttps://example.co.uk/news/1"),
        "{out}"
    );
    assert!(lines[0].contains("near-duplicate of blake3:"), "{out}");
    assert!(lines[1].starts_with("Second story\t"), "{out}");
}

#[tokio::test]
async fn python_consumer_prints_articles_bounded() {
    let dir = root().join("docs/examples");
    if !works("python3", &["-c", "import pika"], &dir) {
        skip_or_fail(
            "python3 with pika not available (pip install -r docs/examples/requirements.txt)",
        );
        return;
    }
    check_consumer_output("consumer.py", run_consumer("python3", "consumer.py").await);
}

#[tokio::test]
async fn node_consumer_prints_articles_bounded() {
    let dir = root().join("docs/examples");
    if !works("node", &["-e", "require.resolve('amqplib')"], &dir) {
        skip_or_fail("node with amqplib not available (npm install --prefix docs/examples)");
        return;
    }
    check_consumer_output("consumer.js", run_consumer("node", "consumer.js").await);
}
