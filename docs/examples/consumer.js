#!/usr/bin/env node
// Read paperboy's output: bind a private queue to the output exchange and print what arrives.
//
//   npm install --prefix docs/examples            (amqplib)
//   node docs/examples/consumer.js 'article.en.#'                 English articles, title and URL
//   node docs/examples/consumer.js 'outcome.failed.#' --json      failures, one JSON object a line
//   node docs/examples/consumer.js '#' --max 10 --timeout 60      stop after 10 messages or 60 s
//
// Routing keys: article.<language>.<site> (site = host without www., dots as underscores, e.g.
// article.en.example_co_uk), outcome.duplicate, outcome.skipped.<reason>, outcome.failed.<reason>.
// Payloads: deploy/schema/article.json and outcome.json.
//
// The queue is exclusive and deleted when this program stops. Exit status: 0 normally; 1 when --timeout
// passed before --max messages arrived; 2 on a connection or broker error.
'use strict';

const amqp = require('amqplib');

function usage(code) {
  const out = code ? process.stderr : process.stdout;
  out.write(
    'usage: consumer.js [PATTERN] [--url URL] [--exchange NAME] [--max N] [--timeout S] [--json]\n' +
      '  PATTERN     topic pattern to bind with (default article.#; "#" = everything)\n' +
      '  --url       broker URL (default $AMQP_URL or amqp://guest:guest@127.0.0.1:5672/%2f)\n' +
      '  --exchange  output exchange (default paperboy.output)\n' +
      '  --max       stop after N messages (0 = no limit)\n' +
      '  --timeout   stop after S seconds in all (0 = no limit)\n' +
      '  --json      print each message as one JSON line\n',
  );
  process.exit(code);
}

function parseArgs(argv) {
  const args = {
    pattern: 'article.#',
    url: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672/%2f',
    exchange: 'paperboy.output',
    max: 0,
    timeout: 0,
    json: false,
  };
  let positional = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(2);
      return argv[++i];
    };
    if (a === '--url') args.url = value();
    else if (a === '--exchange') args.exchange = value();
    else if (a === '--max') args.max = Number.parseInt(value(), 10);
    else if (a === '--timeout') args.timeout = Number.parseFloat(value());
    else if (a === '--json') args.json = true;
    else if (a === '-h' || a === '--help') usage(0);
    else if (a.startsWith('--') || positional++ > 0) usage(2);
    else args.pattern = a;
  }
  if (!(args.max >= 0) || !(args.timeout >= 0)) usage(2);
  return args;
}

function describe(routingKey, msg) {
  const schema = String(msg.schema || '');
  if (schema.startsWith('paperboy.article/')) {
    const title = msg.title || '(no title)';
    const url = msg.canonical_url || msg.final_url || msg.url;
    const near = msg.near_duplicate_of ? `  [near-duplicate of ${msg.near_duplicate_of}]` : '';
    return `${title}\t${url}${near}`;
  }
  if (schema.startsWith('paperboy.outcome/')) {
    return `[${routingKey}] ${msg.url}: ${msg.detail}`;
  }
  return `[${routingKey}] unknown message schema ${JSON.stringify(schema)}`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let conn;
  try {
    conn = await amqp.connect(args.url);
  } catch (e) {
    process.stderr.write(`consumer: cannot connect to the broker: ${e.message}\n`);
    return 2;
  }
  // Errors also arrive as events: without listeners they would crash the process.
  let onBrokerError = (e) => process.stderr.write(`consumer: broker error: ${e.message}\n`);
  conn.on('error', (e) => onBrokerError(e));
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {}); // a channel error also rejects the pending call, handled there
    try {
      await ch.checkExchange(args.exchange);
    } catch (e) {
      process.stderr.write(
        `consumer: exchange ${JSON.stringify(args.exchange)} does not exist (${e.message}); ` +
          'start a paperboy worker first, or pass --exchange\n',
      );
      return 2;
    }
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, args.exchange, args.pattern);
    await ch.prefetch(100);
    process.stderr.write(`consumer: bound ${queue} to ${args.exchange} with '${args.pattern}'\n`);

    let count = 0;
    let finish;
    const finished = new Promise((resolve) => {
      finish = resolve;
    });
    const timer =
      args.timeout > 0
        ? setTimeout(() => {
            if (args.max && count < args.max) {
              process.stderr.write(`consumer: timeout after ${count} of ${args.max} messages\n`);
              finish(1);
            } else finish(0);
          }, args.timeout * 1000)
        : null;
    process.once('SIGINT', () => finish(0));
    onBrokerError = (e) => {
      process.stderr.write(`consumer: broker error: ${e.message}\n`);
      finish(2);
    };

    await ch.consume(queue, (msg) => {
      if (msg === null) {
        process.stderr.write('consumer: the broker cancelled the consumer\n');
        finish(2);
        return;
      }
      if (args.max && count >= args.max) return; // done: the exclusive queue goes away on close
      let body;
      try {
        body = JSON.parse(msg.content.toString('utf8'));
      } catch (_) {
        process.stderr.write(`consumer: skipping a message that is not JSON (${msg.fields.routingKey})\n`);
        ch.ack(msg);
        return;
      }
      process.stdout.write(
        (args.json ? JSON.stringify(body) : describe(msg.fields.routingKey, body)) + '\n',
      );
      ch.ack(msg);
      count += 1;
      if (args.max && count >= args.max) finish(0);
    });

    const code = await finished;
    if (timer) clearTimeout(timer);
    return code;
  } finally {
    await conn.close().catch(() => {});
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`consumer: ${e.stack || e}\n`);
    process.exitCode = 2;
  },
);
