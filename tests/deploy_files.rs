//! The deployment files agree with the code: every `PAPERBOY__…` variable they set is a real config key
//! with a valid value, every port matches the configuration, and the RabbitMQ definitions are the topology
//! the worker declares (checked by name and, against the real broker, by declaring over an import).
//!
//! Docker can't run here: the files are parsed and cross-checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use paperboy::amqp::{Topology, DELAY_TIERS_MS};
use paperboy::config::{DedupStoreKind, LogFormat, Settings};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every YAML document of a file, as JSON values (anchors and aliases resolved).
fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            let v = serde_norway::Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}"));
            serde_json::to_value(v).unwrap_or_else(|e| panic!("{rel}: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

/// `section.key` of every setting in config/default.toml (map-valued settings such as `fetch.resolve`
/// count as one key).
fn default_keys() -> BTreeSet<String> {
    let doc: toml::Table =
        toml::from_str(&read("config/default.toml")).expect("default.toml parses");
    let mut keys = BTreeSet::new();
    for (section, v) in &doc {
        let table = v
            .as_table()
            .unwrap_or_else(|| panic!("[{section}] is a table"));
        for key in table.keys() {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

/// Check the variables of one deployment: names map to real keys, the whole set loads and validates.
fn settings_from(source: &str, vars: &BTreeMap<String, String>) -> Settings {
    let known = default_keys();
    let mut n = 0;
    for name in vars.keys() {
        let Some(rest) = name.strip_prefix("PAPERBOY__") else {
            assert!(
                !name.starts_with("PAPERBOY"),
                "{source}: {name} looks like a setting but lacks the PAPERBOY__ prefix"
            );
            continue;
        };
        n += 1;
        let path = rest.to_ascii_lowercase().replace("__", ".");
        assert!(
            known.contains(&path),
            "{source}: {name} names `{path}`, which is not a key of config/default.toml"
        );
    }
    assert!(n > 0, "{source}: no PAPERBOY__ variables found");
    Settings::load_with_env(None, vars.clone())
        .unwrap_or_else(|e| panic!("{source}: the variables do not load: {e}"))
}

fn env_map(v: &Value) -> BTreeMap<String, String> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect(),
        // Compose list form: ["KEY=value", ...]
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("unexpected environment {other}"),
    }
}

fn metrics_port(s: &Settings) -> u16 {
    s.metrics
        .listen
        .parse::<std::net::SocketAddr>()
        .expect("metrics.listen is set")
        .port()
}

fn url_port(u: &str, default: u16) -> u16 {
    url::Url::parse(u).unwrap().port().unwrap_or(default)
}

fn url_host(u: &str) -> String {
    url::Url::parse(u).unwrap().host_str().unwrap().to_string()
}

/// "30s", "1m30s", "500ms" -> duration.
fn compose_duration(s: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let n: f64 = num.parse().unwrap_or_else(|_| panic!("duration {s:?}"));
        num.clear();
        total += Duration::from_secs_f64(match unit.as_str() {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            u => panic!("unit {u} in {s:?}"),
        });
    }
    total
}

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml

#[test]
fn compose_file_matches_the_config() {
    let docs = yaml_docs("docker-compose.yml");
    let compose = &docs[0];
    let services = compose["services"].as_object().expect("services");
    let service_names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    for s in ["rabbitmq", "redis", "worker", "cli"] {
        assert!(service_names.contains(s), "service {s} missing");
    }

    let worker = &services["worker"];
    let vars = env_map(&worker["environment"]);
    let settings = settings_from("docker-compose.yml worker", &vars);
    assert_eq!(settings.dedup.store, DedupStoreKind::Redis);
    assert_eq!(settings.log.format, LogFormat::Json);
    let port = metrics_port(&settings);
    assert_eq!(settings.metrics.listen, format!("0.0.0.0:{port}"));
    let expose: Vec<String> = worker["expose"]
        .as_array()
        .expect("worker exposes the metrics port")
        .iter()
        .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
        .collect();
    assert!(
        expose.contains(&port.to_string()),
        "worker expose {expose:?} vs metrics port {port}"
    );

    // Broker and Redis URLs point at the compose services, on the ports those services listen on.
    let amqp = settings.amqp_url();
    assert_eq!(url_host(amqp), "rabbitmq");
    let amqp_port = url_port(amqp, 5672);
    assert_eq!(amqp_port, 5672);
    let redis = settings.redis_url().expect("redis.url set");
    assert_eq!(url_host(redis), "redis");
    assert_eq!(url_port(redis, 6379), 6379);

    assert_eq!(worker["build"]["dockerfile"], "deploy/Dockerfile");
    assert!(root().join("deploy/Dockerfile").exists());
    assert_eq!(worker["deploy"]["replicas"], 3);
    assert_eq!(worker["restart"], "unless-stopped");
    assert!(
        worker.get("ports").is_none() && worker.get("container_name").is_none(),
        "a scaled service must not fix host ports or container names"
    );
    for dep in ["rabbitmq", "redis"] {
        assert_eq!(
            worker["depends_on"][dep]["condition"], "service_healthy",
            "worker -> {dep}"
        );
    }
    let grace = compose_duration(
        worker["stop_grace_period"]
            .as_str()
            .expect("stop_grace_period"),
    );
    assert!(
        grace > Duration::from_millis(settings.worker.shutdown_grace_ms),
        "stop_grace_period {grace:?} must exceed worker.shutdown_grace_ms"
    );

    // The CLI service runs with the same settings.
    let cli = &services["cli"];
    assert_eq!(env_map(&cli["environment"]), vars);
    assert_eq!(cli["profiles"], serde_json::json!(["tools"]));
    assert_eq!(cli["image"], worker["image"]);

    // RabbitMQ: management image, AMQP and UI ports published, health check, config file mounted.
    let rabbit = &services["rabbitmq"];
    assert!(rabbit["image"]
        .as_str()
        .unwrap()
        .starts_with("rabbitmq:3.13-management"));
    let ports: Vec<&str> = rabbit["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ports.contains(&format!("{amqp_port}:{amqp_port}").as_str()),
        "{ports:?}"
    );
    assert!(ports.contains(&"15672:15672"), "{ports:?}");
    let test: Vec<&str> = rabbit["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(test, ["CMD", "rabbitmq-diagnostics", "-q", "ping"]);
    for vol in rabbit["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
    {
        if let Some(src) = vol.split(':').next().filter(|s| s.starts_with("./")) {
            assert!(root().join(src).exists(), "mounted file {src} missing");
        }
    }
    assert_eq!(rabbit["restart"], "unless-stopped");
    // amqp.shards needs the consistent-hash exchange; the image's own file enables the management UI.
    let plugins = std::fs::read_to_string(root().join("deploy/rabbitmq-enabled-plugins")).unwrap();
    let plugins = plugins.trim();
    assert!(
        plugins.starts_with('[') && plugins.ends_with("]."),
        "{plugins}"
    );
    for p in ["rabbitmq_management", "rabbitmq_consistent_hash_exchange"] {
        assert!(plugins.contains(p), "{p} not enabled: {plugins}");
    }

    let redis_svc = &services["redis"];
    let test: Vec<&str> = redis_svc["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(test, ["CMD", "redis-cli", "ping"]);
}

// ---------------------------------------------------------------------------------------------------
// deploy/Dockerfile

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read("deploy/Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (instr, args) = cur.split_once(' ').unwrap_or((&cur, ""));
        out.push((instr.to_ascii_uppercase(), args.trim().to_string()));
        cur.clear();
    }
    out
}

const IMAGE_UID: &str = "10001";

#[test]
fn dockerfile_builds_locked_runs_non_root_and_checks_health_on_the_metrics_port() {
    let d = dockerfile();
    let all = |i: &str| -> Vec<&str> {
        d.iter()
            .filter(|(k, _)| k == i)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let froms = all("FROM");
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(froms[0].starts_with("rust:1-bookworm"), "{froms:?}");
    assert!(froms[1].starts_with("debian:bookworm-slim"), "{froms:?}");
    let runs = all("RUN").join("\n");
    assert!(runs.contains("cargo build --release --locked"), "{runs}");
    assert!(
        runs.contains("ca-certificates") && runs.contains("curl"),
        "{runs}"
    );

    // ENV settings are real keys; the metrics port is the one exposed and health-checked.
    let mut vars = BTreeMap::new();
    for env in all("ENV") {
        for pair in env.split_whitespace() {
            let (k, v) = pair.split_once('=').expect("ENV KEY=value");
            vars.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    let settings = settings_from("deploy/Dockerfile ENV", &vars);
    let port = metrics_port(&settings);
    assert_eq!(all("EXPOSE"), [port.to_string().as_str()]);
    let hc = all("HEALTHCHECK").join(" ");
    assert!(
        hc.contains(&format!("http://127.0.0.1:{port}/healthz")),
        "HEALTHCHECK must hit /healthz on {port}: {hc}"
    );

    let user = all("USER");
    let user = user.last().expect("USER set");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "non-root: {user}"
    );
    assert!(user.starts_with(IMAGE_UID));
    assert_eq!(all("ENTRYPOINT"), [r#"["paperboy"]"#]);
    assert_eq!(all("CMD"), [r#"["work"]"#]);
    // The builder needs every input of the build; the Dockerfile-specific ignore file must let them in.
    let ignore = read("deploy/Dockerfile.dockerignore");
    for needed in ["Cargo.toml", "Cargo.lock", "config/", "src/"] {
        assert!(
            ignore.contains(&format!("!{needed}")),
            "{needed} excluded from the build context"
        );
        assert!(
            runs.contains("cargo build")
                && read("deploy/Dockerfile").contains(needed.trim_end_matches('/'))
        );
    }
}

/// Files the crate embeds from outside `src/` (`include_str!("../config/default.toml")`) must be copied
/// into the builder stage, or the image build fails.
#[test]
fn dockerfile_copies_every_file_the_build_embeds() {
    let copies: Vec<String> = dockerfile()
        .into_iter()
        .filter(|(k, _)| k == "COPY")
        .map(|(_, a)| a)
        .collect();
    let mut stack = vec![root().join("src")];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for part in text.split(macro_name).skip(1) {
                    let rel = part.split('"').next().unwrap();
                    let target = path.parent().unwrap().join(rel);
                    let target = target.canonicalize().unwrap_or(target);
                    let inside = target.strip_prefix(root().canonicalize().unwrap()).unwrap();
                    let top = inside
                        .components()
                        .next()
                        .unwrap()
                        .as_os_str()
                        .to_string_lossy()
                        .to_string();
                    if top == "src" {
                        continue;
                    }
                    checked += 1;
                    assert!(
                        copies
                            .iter()
                            .any(|c| c.split_whitespace().next() == Some(top.as_str())),
                        "{} embeds {} but deploy/Dockerfile does not COPY {top}",
                        path.display(),
                        inside.display()
                    );
                }
            }
        }
    }
    assert!(
        checked > 0,
        "config/default.toml is embedded by src/config.rs"
    );
}

// ---------------------------------------------------------------------------------------------------
// deploy/k8s

fn k8s_objects() -> Vec<(String, Value)> {
    let dir = root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .to_string();
        for doc in yaml_docs(&rel) {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{rel}: apiVersion and kind"
            );
            out.push((rel.clone(), doc));
        }
    }
    out
}

fn one<'a>(objs: &'a [(String, Value)], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objs
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| o)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

#[test]
fn k8s_manifests_match_the_config_and_each_other() {
    let objs = k8s_objects();
    let cm = one(&objs, "ConfigMap");
    let secret = one(&objs, "Secret");
    let deploy = one(&objs, "Deployment");
    let svc = one(&objs, "Service");
    let scaled = one(&objs, "ScaledObject");
    let auth = one(&objs, "TriggerAuthentication");

    // The pod's environment: ConfigMap + Secret (envFrom) + explicit env.
    let pod = &deploy["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mut vars = env_map(&cm["data"]);
    vars.extend(env_map(&secret["stringData"]));
    for e in container["env"].as_array().into_iter().flatten() {
        if let Some(v) = e["value"].as_str() {
            vars.insert(e["name"].as_str().unwrap().to_string(), v.to_string());
        }
    }
    let from: BTreeSet<(String, String)> = container["envFrom"]
        .as_array()
        .expect("envFrom")
        .iter()
        .flat_map(|e| {
            e.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v["name"].as_str().unwrap().to_string()))
        })
        .collect();
    let cm_name = cm["metadata"]["name"].as_str().unwrap().to_string();
    let secret_name = secret["metadata"]["name"].as_str().unwrap().to_string();
    assert!(from.contains(&("configMapRef".into(), cm_name)), "{from:?}");
    assert!(
        from.contains(&("secretRef".into(), secret_name.clone())),
        "{from:?}"
    );
    let settings = settings_from("deploy/k8s (ConfigMap + Secret)", &vars);
    assert_eq!(settings.dedup.store, DedupStoreKind::Redis);
    // Passwords only in the Secret.
    for k in ["PAPERBOY__AMQP__URL", "PAPERBOY__REDIS__URL"] {
        assert!(cm["data"].get(k).is_none(), "{k} belongs in the Secret");
    }

    // Ports: metrics.listen == containerPort == probes == Service.
    let port = metrics_port(&settings);
    let ports = container["ports"].as_array().expect("container ports");
    let named = |p: &Value| -> u64 {
        match p {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => ports
                .iter()
                .find(|cp| cp["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
                .as_u64()
                .unwrap(),
            other => panic!("port {other}"),
        }
    };
    assert_eq!(ports[0]["containerPort"], port);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        named(&container["livenessProbe"]["httpGet"]["port"]),
        u64::from(port)
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        named(&container["readinessProbe"]["httpGet"]["port"]),
        u64::from(port)
    );
    let svc_port = &svc["spec"]["ports"][0];
    assert_eq!(svc_port["port"], port);
    assert_eq!(named(&svc_port["targetPort"]), u64::from(port));
    assert_eq!(
        svc["metadata"]["annotations"]["prometheus.io/port"],
        port.to_string()
    );

    // The Service selects the pods; the Deployment selects its own template.
    let pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap();
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(pod_labels.get(k), Some(v), "Service selector {k}");
    }
    for (k, v) in deploy["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(pod_labels.get(k), Some(v), "Deployment selector {k}");
    }

    // Graceful shutdown fits in the termination grace period; runs as the image's non-root user.
    let grace_s = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(grace_s * 1000 > settings.worker.shutdown_grace_ms);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"].to_string(), IMAGE_UID);
    assert_eq!(container["args"], serde_json::json!(["work"]));

    // KEDA: scales this Deployment on the jobs queue, authenticated with the Secret's broker URL.
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        deploy["metadata"]["name"]
    );
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "rabbitmq");
    assert_eq!(
        trigger["metadata"]["queueName"],
        settings.amqp.jobs_queue.as_str()
    );
    assert_eq!(trigger["metadata"]["mode"], "QueueLength");
    assert_eq!(
        trigger["authenticationRef"]["name"],
        auth["metadata"]["name"]
    );
    let target = &auth["spec"]["secretTargetRef"][0];
    assert_eq!(target["parameter"], "host");
    assert_eq!(target["name"], secret_name.as_str());
    assert!(secret["stringData"]
        .get(target["key"].as_str().unwrap())
        .is_some());

    // kustomization lists every manifest but the example Secret.
    let kust = &yaml_docs("deploy/k8s/kustomization.yaml")[0];
    let listed: BTreeSet<&str> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (file, _) in &objs {
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        if name == "secret.example.yaml" || name == "kustomization.yaml" {
            assert!(!listed.contains(name));
        } else {
            assert!(listed.contains(name), "{name} not in kustomization.yaml");
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// deploy/rabbitmq-definitions.json

fn definitions() -> Value {
    serde_json::from_str(&read("deploy/rabbitmq-definitions.json")).expect("definitions parse")
}

fn defaults() -> Settings {
    Settings::load_with_env(None, Vec::<(String, String)>::new()).unwrap()
}

#[test]
fn definitions_name_the_topology_of_the_default_config() {
    let s = defaults();
    let topo = Topology::from_settings(&s);
    let d = definitions();
    let queues: BTreeMap<&str, &Value> = d["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["name"].as_str().unwrap(), q))
        .collect();
    let exchanges: BTreeMap<&str, &Value> = d["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();

    let jobs = queues[s.amqp.jobs_queue.as_str()];
    assert_eq!(jobs["durable"], true);
    assert_eq!(jobs["arguments"]["x-queue-type"], "quorum");
    assert_eq!(jobs["arguments"]["x-delivery-limit"], s.amqp.delivery_limit);
    assert_eq!(
        jobs["arguments"]["x-dead-letter-exchange"],
        s.amqp.dead_letter_exchange.as_str()
    );
    assert_eq!(
        queues[s.amqp.dead_letter_queue.as_str()]["arguments"],
        serde_json::json!({"x-queue-type": "quorum"})
    );
    assert_eq!(
        queues[s.amqp.output_queue.as_str()]["arguments"],
        serde_json::json!({
            "x-queue-type": "quorum",
            "x-max-length": s.amqp.output_queue_max_length,
            "x-overflow": "reject-publish",
        }),
        "the catch-all queue is bounded as the worker declares it"
    );
    let out = exchanges[s.amqp.output_exchange.as_str()];
    assert_eq!(
        (out["type"].as_str(), out["durable"].as_bool()),
        (Some("topic"), Some(true))
    );
    let dlx = exchanges[s.amqp.dead_letter_exchange.as_str()];
    assert_eq!(
        (dlx["type"].as_str(), dlx["durable"].as_bool()),
        (Some("fanout"), Some(true))
    );
    assert_eq!(exchanges.len(), 2);

    // Retry and deferral tiers: TTL queues that dead-letter back to the jobs queue.
    let mut ttl_queues: BTreeMap<String, u64> = BTreeMap::new();
    for (n, ms) in s.retry.tiers_ms.iter().enumerate() {
        ttl_queues.insert(topo.retry_queue(n), *ms);
    }
    for ms in DELAY_TIERS_MS {
        ttl_queues.insert(topo.delay_queue_for(Duration::from_millis(ms)), ms);
    }
    for (name, ms) in &ttl_queues {
        let q = queues
            .get(name.as_str())
            .unwrap_or_else(|| panic!("queue {name} missing"));
        assert_eq!(q["durable"], true);
        assert_eq!(
            q["arguments"],
            serde_json::json!({
                "x-message-ttl": ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": s.amqp.jobs_queue,
            }),
            "{name}"
        );
    }
    assert_eq!(
        queues.len(),
        3 + ttl_queues.len(),
        "no queue the worker does not declare"
    );
    for q in queues.values() {
        assert_eq!(
            (q["vhost"].as_str(), q["auto_delete"].as_bool()),
            (Some("/"), Some(false))
        );
    }

    let bindings: BTreeSet<(String, String, String)> = d["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["destination_type"], "queue");
            (
                b["source"].as_str().unwrap().to_string(),
                b["destination"].as_str().unwrap().to_string(),
                b["routing_key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        (
            s.amqp.output_exchange.clone(),
            s.amqp.output_queue.clone(),
            "#".to_string(),
        ),
        (
            s.amqp.dead_letter_exchange.clone(),
            s.amqp.dead_letter_queue.clone(),
            String::new(),
        ),
    ]
    .into();
    assert_eq!(bindings, expected);
}

fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| format!("rabbitmqctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Import the definitions into a throw-away vhost, then let the worker's own topology code declare over
/// them: any difference in type, durability or arguments fails with PRECONDITION_FAILED.
#[tokio::test]
async fn worker_declares_over_imported_definitions_without_conflict() {
    if rabbitmqctl(&["--version"]).is_err() && rabbitmqctl(&["version"]).is_err() {
        eprintln!("SKIP: rabbitmqctl not available; the name-level check still runs");
        return;
    }
    let vhost = format!("paperboy-test-{}", uuid::Uuid::new_v4().simple());
    let mut d = definitions();
    for section in ["queues", "exchanges", "bindings"] {
        for item in d[section].as_array_mut().unwrap() {
            item["vhost"] = Value::String(vhost.clone());
        }
    }
    d["vhosts"] = serde_json::json!([{"name": vhost}]);
    let user = url::Url::parse(
        &std::env::var("AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
    )
    .unwrap();
    d["permissions"] = serde_json::json!([{
        "user": user.username(), "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"
    }]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("definitions.json");
    std::fs::write(&file, serde_json::to_vec(&d).unwrap()).unwrap();

    let result = async {
        rabbitmqctl(&["import_definitions", file.to_str().unwrap()])?;
        let mut amqp = user.clone();
        amqp.set_path(&format!("/{vhost}"));
        let s = defaults();
        let topo = Topology::from_settings(&s);
        // The import is asynchronous: wait until the last queue exists.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let conn = loop {
            let conn =
                lapin::Connection::connect(amqp.as_str(), lapin::ConnectionProperties::default())
                    .await;
            if let Ok(conn) = conn {
                let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
                let passive = lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let last = topo.delay_queue_for(Duration::from_millis(
                    DELAY_TIERS_MS[DELAY_TIERS_MS.len() - 1],
                ));
                if ch
                    .queue_declare(last.as_str().into(), passive, Default::default())
                    .await
                    .is_ok()
                {
                    break conn;
                }
            }
            if std::time::Instant::now() > deadline {
                return Err("definitions were not imported within 30 s".to_string());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        topo.declare(&ch).await.map_err(|e| {
            format!("the worker's topology conflicts with deploy/rabbitmq-definitions.json: {e}")
        })?;
        let _ = conn.close(200, "bye".into()).await;
        Ok::<(), String>(())
    }
    .await;
    let cleanup = rabbitmqctl(&["delete_vhost", &vhost]);
    result.unwrap();
    cleanup.unwrap();
}
