//! paperboy binary: parse the CLI, load settings, init logs, pick implementations, run.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use paperboy::config::{LogFormat, Settings};

/// The system allocator (glibc malloc on the Debian image), tuned in [`tune_allocator`]. mimalloc
/// (`no_thp`, purge delay 0) held 112-140 MB peak RSS per worker over HTTPS with keep-alive, glibc
/// with its defaults 131-140 MB, glibc tuned 68-75 MB (`scripts/bench-e2e.sh --https`, 2 cores; see
/// docs/performance.md, "Memory").
///
/// Two malloc options, each left alone when its environment variable (or `GLIBC_TUNABLES`) is set:
/// - `M_MMAP_THRESHOLD` = 256 KiB: blocks from 256 KiB up (bodies, hyper's read buffers of up to
///   ~400 KiB, big DOM vectors) get their own mapping, returned to the OS when freed. By default glibc
///   raises the threshold each time such a block is freed (up to 32 MiB), after which big blocks come
///   from the arenas and the freed space stays in them (`MALLOC_MMAP_THRESHOLD_`).
/// - `M_ARENA_MAX` = one arena per core instead of 8 per core: extractions run on a rotating set of
///   blocking threads, and each thread took an arena of its own that kept its freed memory
///   (`MALLOC_ARENA_MAX`).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let unset = |var: &str| {
            std::env::var_os(var).is_none() && std::env::var_os("GLIBC_TUNABLES").is_none()
        };
        if unset("MALLOC_MMAP_THRESHOLD_") {
            // SAFETY: sets a malloc tunable before any other thread exists; no pointers involved.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
        }
        if unset("MALLOC_ARENA_MAX") {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
        }
    }
}

use paperboy::{commands, dedup, fetch, metrics, pipeline, worker};

/// Turns URLs into clean, structured news articles: URL jobs in (RabbitMQ), JSON articles out.
#[derive(Parser)]
#[command(name = "paperboy", version, about, long_about = None)]
struct Cli {
    /// TOML file layered over the built-in defaults (see config/default.toml); PAPERBOY__SECTION__KEY
    /// environment variables override both.
    #[arg(long, short, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one worker: consume URL jobs, process them concurrently, publish articles/outcomes, ack.
    Work,
    /// Publish one job per URL (arguments, then lines of --file or stdin) to the jobs queue, with confirms.
    ///
    /// Blank lines and lines starting with `#` are skipped; an invalid URL is reported with its line
    /// number and the rest goes on. Prints how many jobs the broker confirmed.
    Submit {
        /// URLs to submit; `-` reads them from standard input, one per line.
        urls: Vec<String>,
        /// What the URLs point at: `page`, `feed` or `sitemap` (default: recognised from each answer).
        #[arg(long, value_name = "KIND", value_parser = parse_kind)]
        kind: Option<paperboy::message::JobKind>,
        /// Read URLs from FILE, one per line; `-` reads standard input.
        #[arg(long, short, value_name = "FILE")]
        file: Option<String>,
    },
    /// Print every message of the output exchange as one JSON line (temporary exclusive queue).
    Tail {
        /// Topic pattern to bind with, e.g. `article.en.#`, `outcome.#`, `#` (all).
        #[arg(long, short, default_value = "#", value_name = "PATTERN")]
        routing_key: String,
        /// Stop after N messages.
        #[arg(long, value_name = "N")]
        max: Option<usize>,
        /// Stop after SECONDS without a message.
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<f64>,
    },
    /// No broker: fetch each URL (politely), extract, print one article (or outcome) JSON per line.
    Scrape {
        /// URLs to scrape.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// Inspect or replay the dead-letter queue.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// No network: extract saved pages (.html or .html.gz), one JSON line per file with "source".
    Extract {
        /// The URL the pages were fetched from (resolves relative links, names the site).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Saved pages.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Print dead letters (headers and body) as JSON lines, leaving them in the queue.
    List {
        /// Print at most N.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Move dead letters back to the jobs queue (attempts start again from 1).
    Replay {
        /// Move at most N.
        #[arg(long, default_value_t = usize::MAX)]
        max: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("paperboy: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    tune_allocator();
    let settings = Arc::new(Settings::load(cli.config.as_deref())?);
    init_logs(settings.log.format);
    if let Command::Extract { url, files } = &cli.command {
        return extract(&settings, url.as_deref(), files);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(cli.command, settings))
}

async fn run_async(command: Command, settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Work => run_worker(settings).await,
        Command::Submit {
            mut urls,
            file,
            kind,
        } => {
            // `-` among the URLs means standard input (the Unix convention), like `--file -`.
            let dash = urls.iter().any(|u| u == "-");
            urls.retain(|u| u != "-");
            let file = match (file, dash) {
                (Some(f), true) if f != "-" => anyhow::bail!(
                    "submit: both `-` (standard input) and --file {f} given: choose one source of lines"
                ),
                (_, true) => Some("-".to_string()),
                (f, false) => f,
            };
            let input: Option<Box<dyn BufRead + Send>> = match file.as_deref() {
                None => None,
                Some("-") => Some(Box::new(std::io::BufReader::new(std::io::stdin()))),
                Some(path) => Some(Box::new(std::io::BufReader::new(
                    std::fs::File::open(path)
                        .with_context(|| format!("cannot open --file {path}"))?,
                ))),
            };
            if urls.is_empty() && input.is_none() {
                anyhow::bail!("nothing to submit: give URLs as arguments, or --file FILE, or `-` (or --file -) for standard input");
            }
            let mut err = std::io::stderr();
            let r = commands::submit(&settings, kind, &urls, input, &mut err).await?;
            println!(
                "{} jobs confirmed, {} invalid lines, {} not confirmed",
                r.confirmed, r.invalid, r.failed
            );
            Ok(if r.invalid == 0 && r.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Tail {
            routing_key,
            max,
            idle_timeout,
        } => {
            let mut out = std::io::stdout();
            let idle = idle_timeout.map(Duration::from_secs_f64);
            commands::tail(&settings, &routing_key, max, idle, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Scrape { urls } => {
            let fetcher = fetch::PoliteFetcher::new(&settings, None)?;
            let seen = dedup::build_store(&settings, None).await?;
            let processor =
                pipeline::Processor::new(Arc::new(fetcher), Arc::new(seen), settings.clone());
            let mut out = std::io::stdout();
            let concurrency = usize::from(settings.worker.concurrency);
            let (_articles, others) =
                commands::scrape(&processor, &urls, concurrency, &mut out).await;
            Ok(if others == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Dlq { action } => {
            match action {
                DlqAction::List { max } => {
                    let n = commands::dlq_list(&settings, max, &mut std::io::stdout()).await?;
                    eprintln!("{n} dead letters listed");
                }
                DlqAction::Replay { max } => {
                    let n = commands::dlq_replay(&settings, max).await?;
                    println!("{n} dead letters replayed to {}", settings.amqp.jobs_queue);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Extract { .. } => unreachable!("handled without a runtime"),
    }
}

async fn run_worker(settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    let redis = paperboy::redis_conn::connect(&settings).await?;
    let fetcher = fetch::PoliteFetcher::new(&settings, redis.clone())?;
    let seen = dedup::build_store(&settings, redis.clone()).await?;
    let processor = pipeline::Processor::new(Arc::new(fetcher), Arc::new(seen), settings.clone());
    let metrics = Arc::new(metrics::Metrics::new());
    let health = Arc::new(metrics::Health::new(redis.is_some()));
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    if let Some(conn) = redis {
        metrics.watch_redis(conn.health().clone());
        let every = Duration::from_secs(5);
        tokio::spawn(metrics::watch_redis(
            conn,
            health.clone(),
            every,
            shutdown.clone(),
        ));
    }
    if !settings.metrics.listen.is_empty() {
        // Bind before consuming, so a port clash is a start-up error, not a silent gap in monitoring.
        let addr: std::net::SocketAddr =
            settings.metrics.listen.parse().context("metrics.listen")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on metrics.listen = {addr}"))?;
        let (m, h, s) = (metrics.clone(), health.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(e) = metrics::serve_on(listener, m, h, s).await {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    let worker = worker::Worker::new(processor, settings.clone(), metrics, health);
    worker.run(shutdown).await?;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}

fn extract(settings: &Settings, url: Option<&str>, files: &[String]) -> anyhow::Result<ExitCode> {
    let url = url
        .map(|u| url::Url::parse(u).with_context(|| format!("--url {u:?} is not an absolute URL")))
        .transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0;
    for f in files {
        let v = commands::extract_file(f, url.as_ref(), settings.extract.max_html_bytes);
        failures += usize::from(v.get("error").is_some());
        if writeln!(out, "{v}").is_err() {
            break; // broken pipe
        }
    }
    let _ = out.flush();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// First SIGTERM/SIGINT: graceful shutdown. Second: exit at once (unacked jobs are redelivered).
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for n in 0..2 {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if n == 0 {
                tracing::info!(
                    "shutdown requested; finishing in-flight jobs (signal again to exit at once)"
                );
                shutdown.cancel();
            } else {
                tracing::warn!(
                    "second signal: exiting now; unfinished jobs stay unacked and are redelivered"
                );
                std::process::exit(130);
            }
        }
    });
}

fn init_logs(format: LogFormat) {
    paperboy::logging::init(format);
}

/// `--kind`: page, feed or sitemap.
fn parse_kind(s: &str) -> Result<paperboy::message::JobKind, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("{s:?} is not a job kind: use page, feed or sitemap"))
}
