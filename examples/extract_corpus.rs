//! Run the extractor over saved pages and print one JSON line per page (for scoring/benchmarks).
//!
//! usage: cargo run --release --example extract_corpus -- [--quiet] [--repeat N] FILE_OR_DIR...
//!
//! `.html` and `.html.gz` files are read; a directory is scanned (non-recursively, sorted).
//! Each output line: `{"source", "text", "title", "authors", "published_at", "modified_at",
//! "language", "page_kind", "site_name", "description", "image", "canonical_url", "charset",
//! "elapsed_us"}`, plus `"error"` when the page has no body text (its metadata is still given,
//! with an empty text); a page that fails otherwise gives `{"source", "error"}`. `--quiet` prints only a summary
//! (pages, seconds, pages/s, MB/s) on stderr: for benchmarking. Rates are per second of this
//! thread's CPU time (like trafilatura's `time.process_time()` in scripts/bench-extract.sh), so a
//! loaded machine does not skew the ratio; wall-clock seconds are printed beside them. `--parse-only` times decoding and
//! parsing alone (the floor any scraper-based extractor pays).

use paperboy::extract::{extract, Page};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The allocator the `paperboy` binary uses (src/main.rs), so the figures are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time consumed by the calling thread.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn read_page(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn main() {
    let mut quiet = false;
    let mut parse_only = false;
    let mut repeat = 1usize;
    let mut inputs: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quiet" => quiet = true,
            "--parse-only" => {
                quiet = true;
                parse_only = true;
            }
            "--repeat" => repeat = args.next().and_then(|s| s.parse().ok()).unwrap_or(1),
            _ => inputs.push(a),
        }
    }
    if inputs.is_empty() {
        eprintln!("usage: extract_corpus [--quiet] [--repeat N] FILE_OR_DIR...");
        std::process::exit(2);
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for inp in &inputs {
        let p = PathBuf::from(inp);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap_or_else(|e| panic!("cannot read {inp}: {e}"))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.to_string_lossy();
                    n.ends_with(".html") || n.ends_with(".html.gz") || n.ends_with(".htm")
                })
                .collect();
            v.sort();
            files.extend(v.into_iter().map(|p| (p.to_string_lossy().into_owned(), p)));
        } else {
            files.push((inp.clone(), p));
        }
    }
    // Read everything first so the timing covers extraction only.
    let pages: Vec<(String, std::io::Result<Vec<u8>>)> = files
        .into_iter()
        .map(|(s, p)| {
            let b = read_page(&p);
            (s, b)
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut total = std::time::Duration::ZERO;
    let mut cpu = std::time::Duration::ZERO;
    let mut bytes = 0usize;
    let mut count = 0usize;
    for _ in 0..repeat {
        for (source, body) in &pages {
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    if !quiet {
                        let line = serde_json::json!({"source": source, "error": format!("cannot read: {e}")});
                        writeln!(out, "{line}").expect("stdout");
                    }
                    continue;
                }
            };
            let t = Instant::now();
            let c0 = thread_cpu();
            if parse_only {
                // Baseline: UTF-8 decode + scraper parse only.
                let (s, _, _) = encoding_rs::UTF_8.decode(body);
                let doc = scraper::Html::parse_document(&s);
                std::hint::black_box(doc.tree.nodes().len());
                cpu += thread_cpu() - c0;
                total += t.elapsed();
                bytes += body.len();
                count += 1;
                continue;
            }
            let r = extract(&Page {
                body,
                url: None,
                content_type: None,
                content_language: None,
            });
            cpu += thread_cpu() - c0;
            let el = t.elapsed();
            total += el;
            bytes += body.len();
            count += 1;
            if quiet {
                continue;
            }
            // A page without body text still has its metadata: printed with an empty text and
            // the error.
            let (r, error) = match r {
                Ok(x) => (Ok(x), None),
                Err(e) => match e.partial() {
                    Some(x) => (Ok(x.clone()), Some(e.to_string())),
                    None => (Err(e), None),
                },
            };
            let mut line = match r {
                Ok(x) => serde_json::json!({
                    "source": source,
                    "text": x.text,
                    "title": x.title,
                    "authors": x.authors,
                    "published_at": x.published_at,
                    "modified_at": x.modified_at,
                    "language": x.language,
                    "page_kind": x.page_kind,
                    "site_name": x.site_name,
                    "description": x.description,
                    "image": x.image,
                    "canonical_url": x.canonical_url,
                    "charset": x.charset,
                    "extraction_confidence": x.confidence,
                    "signals": x.signals.as_array(),
                    "elapsed_us": el.as_micros() as u64,
                }),
                Err(e) => {
                    serde_json::json!({"source": source, "error": e.to_string(), "elapsed_us": el.as_micros() as u64})
                }
            };
            if let Some(e) = error {
                line["error"] = serde_json::json!(e);
            }
            writeln!(out, "{line}").expect("stdout");
        }
    }
    out.flush().expect("stdout");
    let wall = total.as_secs_f64();
    let secs = cpu.as_secs_f64();
    eprintln!(
        "extract_corpus: {count} pages, {:.1} MB, {secs:.3} s CPU extracting ({wall:.3} s wall), {:.1} pages/s, {:.1} MB/s, {:.2} ms/page",
        bytes as f64 / 1e6,
        count as f64 / secs.max(1e-9),
        bytes as f64 / 1e6 / secs.max(1e-9),
        secs * 1e3 / count.max(1) as f64
    );
}
