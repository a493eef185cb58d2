//! paperboy: URL jobs in (RabbitMQ), clean structured articles out.
//!
//! # Layout
//! - [`config`]: typed settings from `config/default.toml`, `--config FILE` and `PAPERBOY__*` variables.
//! - [`message`]: wire types: `Job` (in), `Article` and `Outcome` (out), routing keys, message ids.
//! - [`extract`]: PURE page bytes -> article (charset, boilerplate removal, metadata).
//! - [`fetch`]: HTTP client with timeouts, caps and SSRF guard; robots.txt; per-host politeness.
//! - [`dedup`]: PURE content hash; the stores that remember what was seen.
//! - [`amqp`]: broker connection with recovery, topology, publish-with-confirm.
//! - [`worker`]: the only module that sees every stage: job -> outcome, ack after confirm.
//! - [`commands`]: the `submit`, `tail`, `scrape` and `extract` subcommands.
//! - [`metrics`]: every metric name in one place; `/metrics`, `/healthz`, `/readyz`.
//! - [`pipeline`]: job -> article/outcome decision without a broker (shared by `work` and `scrape`).
//! - [`redis_conn`]: the Redis connection (redis:// or rediss:// with `redis.ca_file`).
//! - [`sources`]: PURE feeds and sitemaps -> the page URLs they list (with limits).
//! - [`tls`]: one rustls crypto provider (ring) for the process, CA files, hints for TLS errors.

pub mod amqp;
pub mod commands;
pub mod config;
pub mod dedup;
pub mod extract;
pub mod fetch;
pub mod logging;
pub mod message;
pub mod metrics;
pub mod pipeline;
pub mod redis_conn;
pub mod sources;
pub mod tls;
pub mod worker;
