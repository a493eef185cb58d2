//! Log set-up for the binary: tracing to stderr (text or JSON), with the `log` records of dependencies
//! bridged into tracing. The HTML parser (html5ever) reports malformed markup it repairs ("foster parenting
//! not implemented") as `log` warnings: they say nothing a user can act on, so they are re-levelled to
//! debug (visible with `RUST_LOG=debug` or `RUST_LOG=html5ever=debug`).

use crate::config::LogFormat;

/// Targets whose `log` warnings are parser noise, re-levelled to debug.
const PARSER_TARGETS: &[&str] = &["html5ever", "markup5ever", "selectors", "scraper"];

/// The level a `log` record is forwarded at: parser warnings and errors become debug.
pub fn effective_level(target: &str, level: log::Level) -> log::Level {
    let is_parser = PARSER_TARGETS
        .iter()
        .any(|t| target == *t || target.starts_with(&format!("{t}::")));
    if is_parser && level < log::Level::Debug {
        log::Level::Debug
    } else {
        level
    }
}

/// Forwards `log` records to tracing at [`effective_level`].
struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = effective_level(record.target(), record.level());
        let relevelled = log::Record::builder()
            .args(*record.args())
            .level(level)
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        // format_trace checks the subscriber's filter; an error only means no subscriber wanted it.
        let _ = tracing_log::format_trace(&relevelled);
    }

    fn flush(&self) {}
}

/// Install the global subscriber (filter from `RUST_LOG`, default `info`) and the `log` bridge.
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `finish` + set_global_default (not `init`): `init` would install tracing-log's own LogTracer, which
    // forwards parser warnings at warn.
    let installed = match format {
        LogFormat::Json => tracing::subscriber::set_global_default(builder.json().finish()),
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish()),
    };
    if installed.is_ok() && log::set_boxed_logger(Box::new(Bridge)).is_ok() {
        let max = match tracing::level_filters::LevelFilter::current().into_level() {
            None => log::LevelFilter::Off,
            Some(tracing::Level::ERROR) => log::LevelFilter::Error,
            Some(tracing::Level::WARN) => log::LevelFilter::Warn,
            Some(tracing::Level::INFO) => log::LevelFilter::Info,
            Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
            Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
        };
        log::set_max_level(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_warnings_become_debug_and_others_keep_their_level() {
        assert_eq!(
            effective_level("html5ever::tree_builder", log::Level::Warn),
            log::Level::Debug
        );
        assert_eq!(
            effective_level("html5ever", log::Level::Error),
            log::Level::Debug
        );
        assert_eq!(
            effective_level("html5ever", log::Level::Trace),
            log::Level::Trace
        );
        assert_eq!(
            effective_level("rustls::conn", log::Level::Warn),
            log::Level::Warn
        );
        assert_eq!(
            effective_level("html5everx", log::Level::Warn),
            log::Level::Warn
        );
    }
}
