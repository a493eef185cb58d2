#!/usr/bin/env python3
"""Read paperboy's output: bind a private queue to the output exchange and print what arrives.

    pip install -r docs/examples/requirements.txt
    python3 docs/examples/consumer.py 'article.en.#'                 # English articles, title and URL
    python3 docs/examples/consumer.py 'outcome.failed.#' --json      # failures, one JSON object a line
    python3 docs/examples/consumer.py '#' --max 10 --timeout 60      # stop after 10 messages or 60 s

Routing keys: article.<language>.<site> (site = host without www., dots as underscores, e.g.
article.en.example_co_uk), outcome.duplicate, outcome.skipped.<reason>, outcome.failed.<reason>.
Payloads: deploy/schema/article.json and outcome.json.

The queue is exclusive and deleted when this program stops: it sees only messages published while it
runs. For a durable feed, declare your own durable queue and bind it the same way.

Exit status: 0 normally; 1 when --timeout passed before --max messages arrived; 2 on a connection or
broker error.
"""

import argparse
import json
import os
import sys
import time

import pika
import pika.exceptions


def parse_args(argv):
    p = argparse.ArgumentParser(description="Print articles/outcomes from paperboy's output exchange.")
    p.add_argument("pattern", nargs="?", default="article.#",
                   help="topic pattern to bind with (default: article.#; '#' = everything)")
    p.add_argument("--url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                   help="broker URL (default: $AMQP_URL or amqp://guest:guest@127.0.0.1:5672/%%2f)")
    p.add_argument("--exchange", default="paperboy.output", help="output exchange (amqp.output_exchange)")
    p.add_argument("--max", type=int, default=0, metavar="N", help="stop after N messages (0 = no limit)")
    p.add_argument("--timeout", type=float, default=0, metavar="S",
                   help="stop after S seconds in all (0 = no limit)")
    p.add_argument("--json", action="store_true", help="print each message as one JSON line")
    return p.parse_args(argv)


def describe(routing_key, msg):
    """One human-readable line for an article or an outcome."""
    schema = str(msg.get("schema", ""))
    if schema.startswith("paperboy.article/"):
        title = msg.get("title") or "(no title)"
        url = msg.get("canonical_url") or msg.get("final_url") or msg.get("url")
        near = f"  [near-duplicate of {msg['near_duplicate_of']}]" if msg.get("near_duplicate_of") else ""
        return f"{title}\t{url}{near}"
    if schema.startswith("paperboy.outcome/"):
        return f"[{routing_key}] {msg.get('url')}: {msg.get('detail')}"
    return f"[{routing_key}] unknown message schema {schema!r}"


def main(argv=None):
    args = parse_args(argv)
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    try:
        conn = pika.BlockingConnection(pika.URLParameters(args.url))
    except pika.exceptions.AMQPError as e:
        print(f"consumer: cannot connect to the broker: {e!r}", file=sys.stderr)
        return 2
    try:
        ch = conn.channel()
        try:
            ch.exchange_declare(args.exchange, exchange_type="topic", passive=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            print(f"consumer: exchange {args.exchange!r} does not exist ({e.reply_text}); "
                  "start a paperboy worker first, or pass --exchange", file=sys.stderr)
            return 2
        queue = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(queue, args.exchange, routing_key=args.pattern)
        ch.basic_qos(prefetch_count=100)
        print(f"consumer: bound {queue} to {args.exchange} with {args.pattern!r}", file=sys.stderr, flush=True)

        count = 0
        # One generator for the whole run; it yields (None, None, None) after 0.5 s without a message
        # so the deadline is checked at least twice a second.
        for method, _props, body in ch.consume(queue, inactivity_timeout=0.5):
            if args.max and count >= args.max:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if method is None:
                continue
            try:
                msg = json.loads(body)
            except ValueError:
                print(f"consumer: skipping a message that is not JSON ({method.routing_key})", file=sys.stderr)
                ch.basic_ack(method.delivery_tag)
                continue
            if args.json:
                print(json.dumps(msg, ensure_ascii=False), flush=True)
            else:
                print(describe(method.routing_key, msg), flush=True)
            ch.basic_ack(method.delivery_tag)
            count += 1
            if args.max and count >= args.max:
                break
        ch.cancel()
        if args.max and count < args.max:
            print(f"consumer: timeout after {count} of {args.max} messages", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    except pika.exceptions.AMQPError as e:
        print(f"consumer: broker error: {e!r}", file=sys.stderr)
        return 2
    finally:
        if conn.is_open:
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
