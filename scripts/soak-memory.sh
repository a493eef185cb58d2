#!/usr/bin/env bash
# Memory soak: one release worker with the bounded memory dedup store takes JOBS distinct pages (default
# 100,000) and its RSS is sampled as it goes. The RSS must stay flat once the store is full: the store is
# bounded by dedup.max_entries (set low here, 10,000, so it fills early and evicts for most of the run).
#
#   scripts/soak-memory.sh [--jobs N] [--max-entries N] [--hosts N] [--idle N]
#
# --hosts N spreads the jobs over N host names (h<k>.test, all resolved to the local server through
# fetch.resolve) so that keep-alive holds up to one idle connection per host: the case where idle
# connections cost the most memory. --idle N sets fetch.max_idle_connections_per_host (default: the
# config's). PROFILE=quality builds the incremental optimised profile instead of release.
#
# Prints one sample every 5 s (jobs done, VmRSS, VmHWM, store evictions so far), then a summary: RSS
# after warm-up (the first 10 % of the jobs) as min / max, and the growth from the first to the last
# quarter of that part of the run.
# Needs RabbitMQ on 127.0.0.1:5672 and python3. Uses its own queue names and deletes them afterwards.
# Pages come from a tiny local server (python3) that makes a distinct article for every /p/<n>.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=100000
MAX_ENTRIES=10000
HOSTS=0
IDLE=
while (($#)); do
  case "$1" in
    --jobs) JOBS=$2; shift 2 ;;
    --max-entries) MAX_ENTRIES=$2; shift 2 ;;
    --hosts) HOSTS=$2; shift 2 ;;
    --idle) IDLE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --quiet
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE/paperboy
RUN="soak.$$.$(date +%s)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
MPORT=$(free_port)
WORK=$(mktemp -d)

cat > "$WORK/server.py" <<'PY'
import sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
W = "river council harbour festival library station market bridge school garden museum tram stadium clinic forest theatre".split()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        try:
            n = int(self.path.rsplit("/", 1)[-1])
        except ValueError:
            n = 0
        words = [W[(n >> (4 * k)) % 16] for k in range(6)]
        body = ("<html lang=en><head><title>Story %d</title></head><body><article><h1>Story %d</h1>" % (n, n) +
                "".join("<p>Report %d says the %s near the %s will reopen after the %s works, officials said on %s.</p>"
                        % (n, words[k], words[(k + 1) % 6], words[(k + 2) % 6], words[(k + 3) % 6]) for k in range(6)) +
                "</article></body></html>").encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/server.py" "$PORT" &
SERVER=$!

export PAPERBOY__AMQP__JOBS_QUEUE=$RUN.jobs PAPERBOY__AMQP__OUTPUT_EXCHANGE=$RUN.out PAPERBOY__AMQP__OUTPUT_QUEUE=$RUN.out \
  PAPERBOY__AMQP__DEAD_LETTER_EXCHANGE=$RUN.dlx PAPERBOY__AMQP__DEAD_LETTER_QUEUE=$RUN.dead PAPERBOY__AMQP__DELAY_QUEUE=$RUN.delay \
  PAPERBOY__FETCH__ALLOW_PRIVATE_NETWORKS=true PAPERBOY__POLITENESS__MIN_DELAY_MS=0 PAPERBOY__POLITENESS__RESPECT_ROBOTS=false \
  PAPERBOY__POLITENESS__MAX_CONCURRENT_PER_HOST=64 PAPERBOY__WORKER__CONCURRENCY=64 \
  PAPERBOY__DEDUP__STORE=memory PAPERBOY__DEDUP__MAX_ENTRIES=$MAX_ENTRIES PAPERBOY__LOG__FORMAT=json RUST_LOG=warn \
  PAPERBOY__METRICS__LISTEN=127.0.0.1:$MPORT

cleanup() {
  kill "$WORKER" "$SERVER" 2>/dev/null || true
  for q in jobs out dead delay.1000 delay.5000 delay.15000 delay.60000 delay.300000 delay.600000 delay.1200000 jobs.retry.5000 jobs.retry.30000 jobs.retry.300000; do
    rabbitmqctl -q delete_queue "$RUN.$q" >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

CONFIG=()
if ((HOSTS > 0)); then
  { echo "[fetch.resolve]"; for ((k = 0; k < HOSTS; k++)); do echo "\"h$k.test\" = \"127.0.0.1\""; done; } > "$WORK/hosts.toml"
  CONFIG=(--config "$WORK/hosts.toml")
  seq 1 "$JOBS" | awk -v h="$HOSTS" -v p="$PORT" '{ printf "http://h%d.test:%d/p/%d\n", $1 % h, p, $1 }' > "$WORK/urls.txt"
else
  seq 1 "$JOBS" | sed "s|^|http://127.0.0.1:$PORT/p/|" > "$WORK/urls.txt"
fi
[[ -n "$IDLE" ]] && export PAPERBOY__FETCH__MAX_IDLE_CONNECTIONS_PER_HOST=$IDLE
echo "hosts=${HOSTS:-1} fetch.max_idle_connections_per_host=${IDLE:-default}"
$BIN "${CONFIG[@]}" work 2>"$WORK/worker.log" &
WORKER=$!
sleep 1
$BIN "${CONFIG[@]}" submit --file "$WORK/urls.txt" >/dev/null
echo "jobs=$JOBS dedup.max_entries=$MAX_ENTRIES; sampling worker RSS (KiB) as the output queue fills"
printf '%10s %10s %10s %10s\n' done rss_kib hwm_kib evictions
start=$(date +%s)
: > "$WORK/samples"
while :; do
  done_n=$(rabbitmqctl -q list_queues name messages | awk -v q="$RUN.out" '$1==q {print $2}')
  rss=$(awk '/VmRSS/ {print $2}' /proc/$WORKER/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$WORKER/status)
  ev=$(curl -fsS "http://127.0.0.1:$MPORT/metrics" 2>/dev/null | awk '/^paperboy_dedup_evictions_total / {print $2}')
  printf '%10s %10s %10s %10s\n' "${done_n:-0}" "$rss" "$hwm" "${ev:--}" | tee -a "$WORK/samples"
  [[ "${done_n:-0}" -ge "$JOBS" ]] && break
  (( $(date +%s) - start > 3600 )) && { echo "gave up after an hour" >&2; exit 1; }
  sleep 5
done
echo "finished in $(( $(date +%s) - start )) s"
awk -v jobs="$JOBS" '$1 >= jobs / 10 { r[++n] = $2 }
  END {
    if (n < 4) { print "too few samples after warm-up"; exit }
    min = max = r[1]; q = int(n / 4); a = b = 0
    for (i = 1; i <= n; i++) { if (r[i] < min) min = r[i]; if (r[i] > max) max = r[i] }
    for (i = 1; i <= q; i++) { a += r[i]; b += r[n - q + i] }
    printf "after warm-up (%d samples): RSS min %.1f MB, max %.1f MB; mean of the last quarter - first quarter: %+.1f MB\n",
      n, min / 1024, max / 1024, (b - a) / q / 1024
  }' "$WORK/samples"
