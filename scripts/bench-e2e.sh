#!/usr/bin/env bash
# End-to-end benchmark of paperboy against its peer (Scrapy + trafilatura + pika). See docs/performance.md.
#
# usage: scripts/bench-e2e.sh [--jobs 5000] [--workers 2] [--concurrency 64] [--hosts 64]
#                             [--peer-jobs 3000] [--polite-jobs 1280] [--polite-delay-ms 1000]
#                             [--latency-jobs 1000] [--latency-rate R] [--skip-latency]
#                             [--store redis|memory] [--skip-peer] [--skip-polite] [--no-build]
#                             [--https] [--corpus DIR] [--out DIR]
#
# 1. builds paperboy and the helpers (examples fixture_server, bench_e2e, extract_corpus) in release mode (PROFILE=quality: that profile);
# 2. starts a fixture server answering on 127.0.0.2 .. 127.0.0.(1+hosts), one port, with the pages of
#    CORPUS/aeb-dev and CORPUS/wcxb-dev (default corpus: ../shared/corpus next to the repository);
# 3. politeness off: starts W `paperboy work` processes (own queue/exchange names, own Redis key prefix),
#    submits N jobs (pipelined publisher confirms, meta.submitted_at_ms), waits for every job's article or
#    outcome on the output queue, and measures pages/s, p50/p99 job latency (submitted -> result
#    confirmed), CPU seconds of the workers per 1,000 pages and each worker's peak RSS (VmHWM);
# 4. politeness on (min delay 1 s, 1 request in flight per host): achieved pages/s against the ideal
#    jobs / ((jobs per host - 1) x delay), and the smallest gap the server saw between two requests to one host;
# 4b. latency at a steady load: --latency-jobs jobs submitted at --latency-rate jobs/s (default: half the
#    rate measured in step 3), politeness off, so p50/p99 show the time a job spends in paperboy rather than
#    in the queue;
# 5. extraction alone: examples/extract_corpus single-threaded on the same pages;
# 6. the peer: Scrapy + trafilatura (metadata on) + pika with confirms (bench/peer, installed from PyPI
#    into .venv-bench), crawling the first --peer-jobs URLs of the same list from the same server;
# --https: the fixture server also answers HTTPS (certificate from a CA this script makes with openssl,
#    trusted by the workers through fetch.ca_file) and paperboy's runs fetch https:// URLs; the report adds
#    TLS handshakes per page (handshakes the server completed / pages served; 1.0 = no connection reuse).
#    The peer keeps fetching plain http.
# 7. prints a table; the last line is `ratio paperboy/peer pages_per_s=<x> cpu_per_page=<y>`.
#
# Traffic goes only to servers this script starts on 127.0.0.0/8, RabbitMQ and Redis (AMQP_URL,
# REDIS_URL). Every queue, exchange and Redis key it creates is deleted at the end.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
jobs=5000 workers=2 conc=64 hosts=64 peer_jobs=3000 polite_jobs="" polite_delay=1000
store=redis skip_peer=0 skip_polite=0 build=1 lat_jobs=1000 lat_rate="" skip_lat=0 https=0
corpus="$root/../shared/corpus"
out="$root/bench-out/e2e"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --concurrency) conc="$2"; shift 2 ;;
    --hosts) hosts="$2"; shift 2 ;;
    --peer-jobs) peer_jobs="$2"; shift 2 ;;
    --polite-jobs) polite_jobs="$2"; shift 2 ;;
    --polite-delay-ms) polite_delay="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --latency-jobs) lat_jobs="$2"; shift 2 ;;
    --latency-rate) lat_rate="$2"; shift 2 ;;
    --skip-latency) skip_lat=1; shift ;;
    --skip-peer) skip_peer=1; shift ;;
    --skip-polite) skip_polite=1; shift ;;
    --no-build) build=0; shift ;;
    --https) https=1; shift ;;
    --corpus) corpus="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "bench-e2e: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
polite_jobs="${polite_jobs:-$((hosts * 20))}"
if [[ ! -d "$corpus/aeb-dev/html" || ! -d "$corpus/wcxb-dev/html" ]]; then
  echo "bench-e2e: no corpus at $corpus (expected aeb-dev/html and wcxb-dev/html)." >&2
  echo "Get the public benchmarks: github.com/scrapinghub/article-extraction-benchmark and" >&2
  echo "github.com/Murrough-Foley/web-content-extraction-benchmark, laid out as in ../shared/corpus/README.md" >&2
  echo "(html/<id>.html.gz per set), then pass --corpus DIR." >&2
  exit 2
fi
amqp_url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
mkdir -p "$out"
# PROFILE=quality: the incremental optimised profile (same code, no LTO) for A/B runs of a small change.
profile="${PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$root/target}/$profile"
if [[ $build == 1 ]]; then
  (cd "$root" && cargo build --profile "$profile" --bin paperboy --example fixture_server --example bench_e2e \
     --example extract_corpus >&2)
fi
# The target directory may be shared with other checkouts: run private copies of what was just built.
bin="$out/bin"; mkdir -p "$bin"
for b in paperboy examples/fixture_server examples/bench_e2e examples/extract_corpus; do
  cp "$target/$b" "$bin/"
done
pb="$bin/paperboy" drv="$bin/bench_e2e"
id="$(date +%Y%m%d%H%M%S)-$$"
hz="$(getconf CLK_TCK)"
log() { echo "bench-e2e: $*" >&2; }

# ---------------------------------------------------------------- cleanup of everything we started
pids=() prefixes=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  for p in "${prefixes[@]}"; do
    (env $(names_env "$p") "$drv" cleanup --queue "$p.peer" --exchange "$p.peer" >/dev/null 2>&1) || true
    redis-cli -u "$redis_url" --scan --pattern "$p:*" 2>/dev/null | head -200000 \
      | xargs -r -n 500 redis-cli -u "$redis_url" del >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

names_env() {  # the amqp.* names and the Redis prefix of one run
  local p="$1"
  echo "PAPERBOY__AMQP__URL=$amqp_url PAPERBOY__AMQP__JOBS_QUEUE=$p.jobs PAPERBOY__AMQP__OUTPUT_EXCHANGE=$p.out" \
       "PAPERBOY__AMQP__OUTPUT_QUEUE=$p.out PAPERBOY__AMQP__DEAD_LETTER_EXCHANGE=$p.dlx" \
       "PAPERBOY__AMQP__DEAD_LETTER_QUEUE=$p.dead PAPERBOY__AMQP__DELAY_QUEUE=$p.delay" \
       "PAPERBOY__REDIS__KEY_PREFIX=$p:"
}

# ---------------------------------------------------------------- fixture server
ready="$out/fixture.ready"; rm -f "$ready"
tls_args=()
if [[ $https == 1 ]]; then
  # A throw-away CA and one server certificate for every fixture address.
  tls="$out/tls"; mkdir -p "$tls"
  san="$(for ((k = 0; k < hosts; k++)); do printf 'IP:127.0.0.%d,' $((2 + k)); done)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=paperboy bench CA" -addext basicConstraints=critical,CA:TRUE \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.2" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "${san%,}" >"$tls/ext.cnf"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$tls/ext.cnf" -out "$tls/server.pem" 2>/dev/null
  tls_args=(--tls-cert "$tls/server.pem" --tls-key "$tls/server.key")
fi
"$bin/fixture_server" --hosts "$hosts" --ready-file "$ready" "${tls_args[@]}" \
  "$corpus/aeb-dev/html" "$corpus/wcxb-dev/html" >"$out/fixture.log" 2>&1 &
fixture_pid=$!; pids+=("$fixture_pid")
for _ in $(seq 1200); do [[ -s "$ready" ]] && break; kill -0 "$fixture_pid" 2>/dev/null || break; sleep 0.1; done
[[ -s "$ready" ]] || { log "fixture server did not start:"; cat "$out/fixture.log" >&2; exit 1; }
port="$(sed -n 's/.* port=\([0-9]*\).*/\1/p' "$ready")"
npages="$(sed -n 's/.*pages=\([0-9]*\).*/\1/p' "$ready")"
log "fixture server: $npages pages on 127.0.0.2..127.0.0.$((1 + hosts)):$port"
scheme=http page_port="$port"
if [[ $https == 1 ]]; then
  scheme=https page_port="$(sed -n 's/.*tls_port=\([0-9]*\).*/\1/p' "$ready")"
  log "fixture server: HTTPS on port $page_port (CA $tls/ca.pem)"
fi

# Job k: page k mod pages on host k mod hosts; the query makes every URL distinct. SCHEME/PORT default
# to the ones paperboy's runs use (https with --https); the peer passes http.
make_urls() {  # N FILE [SCHEME PORT]
  awk -v n="$1" -v h="$hosts" -v p="$npages" -v port="${4:-$page_port}" -v sch="${3:-$scheme}" \
    'BEGIN { for (k = 0; k < n; k++) printf "%s://127.0.0.%d:%d/p/%d?n=%d\n", sch, 2 + k % h, port, k % p, k }' >"$2"
}

proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
proc_hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- one paperboy run
run_paperboy() {  # NAME JOBS MIN_DELAY_MS MAX_PER_HOST [RATE]
  local name="$1" n="$2" delay="$3" per_host="$4" rate="${5:-0}"
  local p="bench.$id.$name"; prefixes+=("$p")
  local urls="$out/urls-$name.txt"; make_urls "$n" "$urls"
  local -a envv
  read -r -a envv <<<"$(names_env "$p")"
  envv+=(PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS=true
         PAPERBOY__POLITENESS__MIN_DELAY_MS="$delay"
         PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST="$per_host"
         PAPERBOY__WORKER__CONCURRENCY="$conc"
         PAPERBOY__WORKER__SHUTDOWN_GRACE_MS=5000
         PAPERBOY__DEDUP__STORE="$store"
         RUST_LOG="${RUST_LOG:-warn}")
  [[ $store == redis ]] && envv+=(PAPERBOY__REDIS__URL="$redis_url")
  [[ $https == 1 ]] && envv+=(PAPERBOY__FETCH__CA_FILE="$tls/ca.pem")
  local mports=() wpids=() i
  # Ports the kernel hands out as free (a random pick once collided with an ephemeral port in use).
  read -r -a mports <<<"$(python3 -c "
import socket
ss = [socket.socket() for _ in range($workers)]
for s in ss: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in ss))")"
  for ((i = 0; i < workers; i++)); do
    env "${envv[@]}" PAPERBOY__METRICS__LISTEN="127.0.0.1:${mports[$i]}" "$pb" work \
      >"$out/worker-$name-$i.log" 2>&1 &
    wpids+=($!); pids+=($!)
  done
  for ((i = 0; i < workers; i++)); do
    local ok=0
    for _ in $(seq 300); do
      curl -fsS "http://127.0.0.1:${mports[$i]}/readyz" >/dev/null 2>&1 && { ok=1; break; }
      kill -0 "${wpids[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    [[ $ok == 1 ]] || { log "worker $i did not become ready:"; tail -20 "$out/worker-$name-$i.log" >&2; exit 1; }
  done
  curl -fsS "http://127.0.0.2:$port/__reset" >/dev/null
  local cpu0=() t
  for i in "${wpids[@]}"; do cpu0+=("$(proc_cpu_ticks "$i")"); done
  local timeout_s=$((120 + n / 5))
  [[ $delay -gt 0 ]] && timeout_s=$((120 + 3 * n * delay / 1000 / hosts))
  local -a pace=()
  if [[ $rate != 0 ]]; then
    pace=(--rate "$rate"); timeout_s=$((timeout_s + $(python3 -c "print(int($n / $rate))")))
  fi
  log "$name: $n jobs, $workers workers x concurrency $conc, min_delay_ms=$delay, per host $per_host, store=$store${pace:+, submitted at $rate jobs/s}"
  env "${envv[@]}" "$drv" run --urls "$urls" --out "$out/$name.json" --timeout-s "$timeout_s" "${pace[@]}" \
    >/dev/null || log "$name: not every job completed before the timeout (see $out/$name.json)"
  local cpu=0 hwm=() w=0
  for i in "${wpids[@]}"; do
    t="$(proc_cpu_ticks "$i")"; cpu=$((cpu + t - cpu0[w])); w=$((w + 1))
    hwm+=("$(proc_hwm_kb "$i")")
  done
  curl -fsS "http://127.0.0.2:$port/__stats" >"$out/$name.server.json"
  for i in "${wpids[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
  for i in "${wpids[@]}"; do
    for _ in $(seq 100); do kill -0 "$i" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$i" 2>/dev/null || true
  done
  python3 - "$out/$name.json" "$cpu" "$hz" "${hwm[*]}" "$out/$name.server.json" "$https" <<'EOF'
import json, sys
f, ticks, hz, hwm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
r = json.load(open(f))
if sys.argv[6] == "1":
    srv = json.load(open(sys.argv[5]))
    served = sum(h["requests"] for h in srv["hosts"])
    r["tls_handshakes"] = srv["tls_handshakes"]
    r["tls_handshakes_per_page"] = srv["tls_handshakes"] / max(served, 1)
r["cpu_s"] = ticks / hz
r["cpu_s_per_1000"] = r["cpu_s"] * 1000 / max(r["completed"], 1)
r["peak_rss_mb"] = [int(k) / 1024 for k in hwm]
json.dump(r, open(f, "w"))
EOF
  env "${envv[@]}" "$drv" cleanup >/dev/null 2>&1 || true
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_before="$(loadavg)"

run_paperboy off "$jobs" 0 "$conc"
if [[ $skip_lat == 0 ]]; then
  [[ -z $lat_rate ]] && lat_rate="$(python3 -c "import json; print(round(json.load(open('$out/off.json'))['pages_per_s'] / 2, 1))")"
  run_paperboy latency "$lat_jobs" 0 "$conc" "$lat_rate"
fi
if [[ $skip_polite == 0 ]]; then
  run_paperboy on "$polite_jobs" "$polite_delay" 1
fi

# ---------------------------------------------------------------- extraction alone (one thread)
log "extraction alone: extract_corpus on the same pages, one thread"
"$bin/extract_corpus" --quiet "$corpus/aeb-dev/html" "$corpus/wcxb-dev/html" \
  2>"$out/extract.txt" >/dev/null
cat "$out/extract.txt" >&2

# ---------------------------------------------------------------- the peer
if [[ $skip_peer == 0 ]]; then
  venv="$root/.venv-bench"
  if [[ ! -x "$venv/bin/scrapy" ]]; then
    log "installing the peer into $venv (PyPI: $(tr '\n' ' ' <"$root/bench/peer/requirements.txt"))"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$root/bench/peer/requirements.txt" >&2
  fi
  pp="bench.$id.peer"; prefixes+=("$pp")
  make_urls "$peer_jobs" "$out/urls-peer.txt" http "$port"
  log "peer: $peer_jobs URLs, Scrapy + trafilatura + pika"
  rm -f "$out/peer.json"
  (cd "$root/bench/peer" && PEER_EXCHANGE="$pp.peer" PEER_QUEUE="$pp.peer" PEER_AMQP_URL="$amqp_url" \
     timeout $((300 + peer_jobs)) "$venv/bin/scrapy" crawl urls -a urls="$out/urls-peer.txt" \
     -a stats="$out/peer.json" >"$out/peer.log" 2>&1) || log "peer exited with an error (see $out/peer.log)"
fi
load_after="$(loadavg)"

# ---------------------------------------------------------------- report
python3 - "$out" "$workers" "$conc" "$hosts" "$polite_delay" "$skip_peer" "$skip_polite" \
  "$load_before" "$load_after" <<'EOF'
import json, os, re, sys
out, workers, conc, hosts, delay, skip_peer, skip_polite, lb, la = sys.argv[1:]
workers, conc, hosts, delay = int(workers), int(conc), int(hosts), int(delay)
def load(n):
    p = os.path.join(out, n)
    return json.load(open(p)) if os.path.exists(p) else None
off, on, peer, lat = load("off.json"), load("on.json"), load("peer.json"), load("latency.json")
m = re.search(r"([0-9.]+) pages/s", open(os.path.join(out, "extract.txt")).read())
alone = float(m.group(1)) if m else float("nan")
def split(r):
    res = r["results"]
    art, dup = res.get("article", 0), res.get("outcome.duplicate", 0)
    other = {k: v for k, v in res.items() if k not in ("article", "outcome.duplicate")}
    return f"{art} articles, {dup} duplicates" + (f", other {other}" if other else "")
print(f"\npaperboy end to end: {workers} workers x concurrency {conc}, {hosts} hosts "
      f"(load average before {lb}, after {la})")
print(f"{'run':<16}{'jobs':>7}{'done':>7}{'pages/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
      f"{'CPU s/1k':>10}{'peak RSS MB':>16}")
for name, r in (("politeness off", off), ("steady load", lat), ("politeness on", on)):
    if not r:
        continue
    rss = "/".join(f"{x:.0f}" for x in r["peak_rss_mb"])
    print(f"{name:<16}{r['jobs']:>7}{r['completed']:>7}{r['pages_per_s']:>10.1f}"
          f"{r['latency_ms']['p50']:>10.0f}{r['latency_ms']['p99']:>10.0f}"
          f"{r['cpu_s_per_1000']:>10.1f}{rss:>16}")
    print(f"{'':<16}results: {split(r)}")
    if "tls_handshakes_per_page" in r:
        print(f"{'':<16}HTTPS: {r['tls_handshakes']} TLS handshakes, "
              f"{r['tls_handshakes_per_page']:.3f} per page served")
if lat:
    print(f"steady load: jobs submitted at {lat.get('rate', 0):.1f} jobs/s (politeness off); p50/p99 job "
          f"latency {lat['latency_ms']['p50']:.0f} / {lat['latency_ms']['p99']:.0f} ms")
if on:
    srv = load("on.server.json")
    # pages/s is measured from the first submission to the last result: with k jobs per host a perfectly
    # polite fleet needs (k - 1) intervals, not k (hosts / delay would flatter the achieved rate by k/(k-1)).
    per_host = on["jobs"] / hosts
    ideal = on["jobs"] / (max(per_host - 1, 1) * delay / 1000)
    gaps = [h["min_gap_ms"] for h in srv["hosts"] if h["min_gap_ms"] is not None]
    print(f"politeness on: achieved {on['pages_per_s']:.1f} pages/s of ideal {ideal:.1f} "
          f"({100 * on['pages_per_s'] / ideal:.1f} %); smallest gap between two requests to one host "
          f"{min(gaps) if gaps else float('nan'):.0f} ms (min delay {delay} ms)")
    robots = sum(h["robots"] for h in srv["hosts"])
    short = sum(1 for g in gaps if g < 0.9 * delay)
    if short or robots == 0:
        print(f"WARNING politeness not enforced: {short} of {len(gaps)} hosts saw two requests less than "
              f"{0.9 * delay:.0f} ms apart; robots.txt requests: {robots}")
print(f"extraction alone (extract_corpus, 1 thread, same pages): {alone:.1f} pages/s; "
      f"end to end / extraction alone = {100 * off['pages_per_s'] / alone:.0f} %")
if peer:
    print(f"peer (Scrapy+trafilatura+pika): {peer['pages']} pages, {peer['pages_per_s']:.1f} pages/s, "
          f"{peer['cpu_ms_per_page']:.1f} CPU ms/page, peak RSS {peer['peak_rss_mb']:.0f} MB "
          f"({peer['articles']} articles, {peer['empty']} empty)")
    pb_cpu = off["cpu_s_per_1000"]  # CPU ms per page
    r_rate = off["pages_per_s"] / peer["pages_per_s"]
    r_cpu = pb_cpu / peer["cpu_ms_per_page"]
    print(f"paperboy: {off['pages_per_s']:.1f} pages/s, {pb_cpu:.1f} CPU ms/page")
    print(f"ratio paperboy/peer pages_per_s={r_rate:.2f} cpu_per_page={r_cpu:.3f}")
EOF
