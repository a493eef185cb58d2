//! Private servers a test starts and owns: a test CA with a server certificate (openssl CLI), a RabbitMQ
//! node (own name, ports, data and cookie; optional TLS listener), a TLS-only redis-server, a plain
//! redis-server a test may kill and start again on its port, and a 3-master Redis Cluster. The shared
//! RabbitMQ on 5672 and Redis on 6379 are never touched. Everything is stopped and its files removed on
//! drop, also when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A random secret for passwords (so a test can look for it in logs).
pub fn secret(tag: &str) -> String {
    format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A test CA and a server certificate for IP address 127.0.0.1 only (no DNS name, so `localhost` is a
/// wrong host name), made with the openssl CLI.
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCerts {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", "/CN=paperboy test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")));
        run(Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")));
        std::fs::write(
            p("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("ext.cnf"))
            .arg("-out")
            .arg(p("server.pem")));
        Self {
            ca: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
            dir,
        }
    }

    pub fn ca_str(&self) -> &str {
        self.ca.to_str().unwrap()
    }
}

/// A private RabbitMQ node: `pb-test-<pid>-<rand>@localhost` with its own ports, data, logs and cookie.
pub struct PrivateRabbit {
    pub node: String,
    pub port: u16,
    /// The TLS listener's port, when started with certificates.
    pub tls_port: Option<u16>,
    pub user: String,
    pub password: String,
    dir: tempfile::TempDir,
    child: Child,
}

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

impl PrivateRabbit {
    /// Start the node and wait until it accepts AMQP connections.
    pub fn start(certs: Option<&TestCerts>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pb-rabbit-")
            .tempdir()
            .unwrap();
        for d in ["home", "mnesia", "log"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let node = format!(
            "pb-test-{}-{}@localhost",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let (port, dist_port) = (free_port(), free_port());
        let password = secret("amqpPw");
        let user = "pbtest".to_string();
        let mut conf = format!(
            "listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n\
             default_user = {user}\ndefault_pass = {password}\n"
        );
        let tls_port = certs.map(|c| {
            let tls_port = free_port();
            conf.push_str(&format!(
                "listeners.ssl.default = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\nssl_options.certfile = {}\nssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
                c.ca.display(),
                c.cert.display(),
                c.key.display()
            ));
            tls_port
        });
        std::fs::write(dir.path().join("rabbitmq.conf"), conf).unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        let mut cmd = Command::new(format!("{RABBIT_BIN}/rabbitmq-server"));
        Self::node_env(&mut cmd, dir.path(), &node);
        cmd.env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.path().join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.path().join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.path().join("rabbitmq.conf"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                dir.path().join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", dir.path().join("pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start rabbitmq-server");
        let rabbit = Self {
            node,
            port,
            tls_port,
            user,
            password,
            dir,
            child,
        };
        rabbit.await_port(Duration::from_secs(180));
        rabbit
    }

    fn node_env(cmd: &mut Command, dir: &Path, node: &str) {
        // Own HOME: the node writes its Erlang cookie there and rabbitmqctl -n reads the same one.
        cmd.env("HOME", dir.join("home"))
            .env("RABBITMQ_NODENAME", node);
    }

    fn await_port(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !port_open(self.port) {
            assert!(
                Instant::now() < deadline,
                "private RabbitMQ {} did not listen on {} within {timeout:?}; logs in {}",
                self.node,
                self.port,
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(p) = self.tls_port {
            while !port_open(p) {
                assert!(Instant::now() < deadline, "TLS listener {p} not up");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// `rabbitmqctl -n <node> args…`; returns whether it succeeded, and its stderr.
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(format!("{RABBIT_BIN}/rabbitmqctl"));
        Self::node_env(&mut cmd, self.dir.path(), &self.node);
        let out = cmd
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .output()
            .expect("run rabbitmqctl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Plain AMQP URL with this node's user and password.
    pub fn amqp_url(&self) -> String {
        format!(
            "amqp://{}:{}@127.0.0.1:{}/%2f",
            self.user, self.password, self.port
        )
    }

    /// amqps:// URL on `host` (the certificate names 127.0.0.1 only).
    pub fn amqps_url(&self, host: &str) -> String {
        format!(
            "amqps://{}:{}@{host}:{}/%2f",
            self.user,
            self.password,
            self.tls_port.expect("started without TLS")
        )
    }

    /// Stop the RabbitMQ application (the Erlang node stays up): every connection drops, new ones are refused.
    pub fn stop_app(&self) {
        let (ok, err) = self.ctl(&["stop_app"]);
        assert!(ok, "rabbitmqctl stop_app: {err}");
    }

    /// Start the application again (retried: the old listener socket can take a moment to be released)
    /// and wait until it accepts connections.
    pub fn start_app(&self) {
        let mut last = String::new();
        for _ in 0..30 {
            let (ok, err) = self.ctl(&["start_app"]);
            if ok {
                self.await_port(Duration::from_secs(60));
                return;
            }
            last = err;
            std::thread::sleep(Duration::from_secs(1));
        }
        panic!("rabbitmqctl start_app kept failing: {last}");
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private redis-server listening with TLS only (no plain port), with a password; no persistence.
pub struct PrivateRedis {
    pub tls_port: u16,
    pub password: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl PrivateRedis {
    pub fn start(certs: &TestCerts) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pb-redis-")
            .tempdir()
            .unwrap();
        let tls_port = free_port();
        let password = secret("redisPw");
        let child = Command::new("redis-server")
            .current_dir(dir.path())
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &tls_port.to_string()])
            .arg("--tls-cert-file")
            .arg(&certs.cert)
            .arg("--tls-key-file")
            .arg(&certs.key)
            .arg("--tls-ca-cert-file")
            .arg(&certs.ca)
            .args(["--tls-auth-clients", "no", "--requirepass", &password])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (built with TLS?)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open(tls_port) {
            assert!(
                Instant::now() < deadline,
                "private redis-server not listening on {tls_port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            tls_port,
            password,
            dir,
            child,
        }
    }

    /// rediss:// URL on `host` (the certificate names 127.0.0.1 only).
    pub fn url(&self, host: &str) -> String {
        format!("rediss://:{}@{host}:{}", self.password, self.tls_port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `paperboy work` as a child process with `env`, its log (stderr, `RUST_LOG=debug`) written to a file the
/// test reads afterwards.
pub struct LoggedWorker {
    pub child: Child,
    pub log: tempfile::NamedTempFile,
}

impl LoggedWorker {
    pub fn spawn(env: &[(String, String)]) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_paperboy"));
        c.env("RUST_LOG", "debug");
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .arg("work")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start paperboy work");
        Self { child, log }
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log.path()).unwrap()).into_owned()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for LoggedWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and body of a GET, `None` when the server does not answer.
pub async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

// ---- plain redis-server processes and a Redis Cluster (no persistence; killed on drop)

/// `redis-cli -p port args…`, its standard output (empty when it failed).
pub fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_until(timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// One redis-server on 127.0.0.1:`port`.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A plain server on a free port.
    pub fn start() -> RedisServer {
        let dir = std::env::temp_dir().join(format!("pb-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_with(free_port(), dir, vec![])
    }

    fn start_with(port: u16, dir: PathBuf, extra: Vec<String>) -> RedisServer {
        let mut s = RedisServer {
            port,
            dir,
            extra,
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start the process (again, on the same port) and wait until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed?)");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_until(Duration::from_secs(10), || cli(port, &["PING"])
                .trim()
                .eq("PONG")),
            "redis-server on port {port} does not answer PING"
        );
    }

    /// SIGKILL the process (its data is gone: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One line of `CLUSTER NODES`: port, is a master, flagged failing, slot ranges served.
type NodeView = (u16, bool, bool, Vec<(u16, u16)>);

/// A Redis Cluster of `n` masters (no replicas, or `replicas` per master) on free loopback ports, slots
/// spread by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    /// `n` masters, no replicas (`cluster-node-timeout` 2 s).
    pub fn start(n: usize) -> RedisCluster {
        Self::start_with(n, 0, 2000)
    }

    /// `masters` masters with `replicas` replicas each, `cluster-node-timeout` = `node_timeout_ms` (how
    /// long a master may be unreachable before its replica is elected in its place).
    pub fn start_with(masters: usize, replicas: usize, node_timeout_ms: u64) -> RedisCluster {
        let n = masters * (1 + replicas);
        let dir =
            std::env::temp_dir().join(format!("pb-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                let port = free_port();
                let node_dir = dir.join(port.to_string());
                std::fs::create_dir_all(&node_dir).unwrap();
                RedisServer::start_with(
                    port,
                    node_dir,
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        format!("nodes-{port}.conf"),
                        "--cluster-node-timeout".into(),
                        node_timeout_ms.to_string(),
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let c = RedisCluster { nodes, dir };
        for s in &c.nodes {
            let port = s.port;
            assert!(
                wait_until(Duration::from_secs(20), || cli(port, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")),
                "node {port} never reached cluster_state:ok"
            );
        }
        if replicas > 0 {
            assert!(
                wait_until(Duration::from_secs(20), || c.replicas_in_sync()),
                "replicas never caught up with their masters"
            );
        }
        c
    }

    /// `CLUSTER NODES` as seen by a running node.
    fn topology(&self) -> Vec<NodeView> {
        let Some(alive) = self.nodes.iter().find(|s| s.is_running()) else {
            return vec![];
        };
        cli(alive.port, &["CLUSTER", "NODES"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let port = f
                    .get(1)?
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let flags = f.get(2)?;
                let slots = f
                    .iter()
                    .skip(8)
                    .filter(|r| !r.starts_with('['))
                    .filter_map(|r| {
                        let (a, b) = r.split_once('-').unwrap_or((r, r));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
                Some((
                    port,
                    flags.contains("master"),
                    flags.contains("fail"),
                    slots,
                ))
            })
            .collect()
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let alive = self.nodes.iter().find(|s| s.is_running()).unwrap();
        cli(alive.port, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap()
    }

    /// Index in `nodes` of the master serving `slot` (not failing), if any.
    pub fn master_of(&self, slot: u16) -> Option<usize> {
        let port = self
            .topology()
            .into_iter()
            .find(|(_, master, fail, slots)| {
                *master && !*fail && slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })?
            .0;
        self.nodes
            .iter()
            .position(|s| s.port == port && s.is_running())
    }

    /// Every running master's replicas have acknowledged its whole replication stream (INFO replication:
    /// each `slaveN:…,offset=` equals `master_repl_offset`), so nothing written so far is lost when a
    /// master dies.
    pub fn replicas_in_sync(&self) -> bool {
        self.nodes.iter().filter(|s| s.is_running()).all(|s| {
            let info = cli(s.port, &["INFO", "replication"]);
            if !info.contains("role:master") {
                return true;
            }
            let field = |l: &str, k: &str| -> Option<u64> {
                l.split(',')
                    .find_map(|kv| kv.strip_prefix(k))
                    .and_then(|v| v.trim().parse().ok())
            };
            let Some(offset) = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
            else {
                return false;
            };
            let replicas: Vec<u64> = info
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("offset="))
                .filter_map(|l| field(l.split_once(':')?.1, "offset="))
                .collect();
            !replicas.is_empty() && replicas.iter().all(|o| *o == offset)
        })
    }

    /// SIGKILL node `i` (no persistence: its data survives only on its replica).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Whether every running node reports `cluster_state:ok` and `slot` has a running master.
    pub fn serves(&self, slot: u16) -> bool {
        self.nodes
            .iter()
            .filter(|s| s.is_running())
            .all(|s| cli(s.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            && self.master_of(slot).is_some()
    }

    /// `redis://127.0.0.1:P1,redis://127.0.0.1:P2,…` (every node as a seed).
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Sum of `cmdstat_<name>` calls over every node (INFO commandstats).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let mut total = std::collections::BTreeMap::new();
        for s in &self.nodes {
            for (k, v) in command_calls(s.port) {
                *total.entry(k).or_insert(0) += v;
            }
        }
        total
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for s in &mut self.nodes {
            s.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `INFO commandstats` of one server: command name -> calls.
pub fn command_calls(port: u16) -> std::collections::BTreeMap<String, u64> {
    cli(port, &["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}
