//! Private redis-server processes for tests that kill or reshape Redis: one plain server on a free
//! loopback port (kill it, start it again on the same port), or a 3-master Redis Cluster. No
//! persistence; every process is killed when its handle drops.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback TCP port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

/// A Redis Cluster of `n` masters (no replicas) on free loopback ports, slots spread by
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: PathBuf,
}

impl RedisCluster {
    pub fn start(n: usize) -> RedisCluster {
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
                        "2000".into(),
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
            .args(["--cluster-replicas", "0", "--cluster-yes"])
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
        c
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
