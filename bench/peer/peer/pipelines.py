"""trafilatura extraction with metadata, then one persistent message per item published with pika and
publisher confirms (blocking, as the usual pika pipeline does). Writes its own measurements at close."""
import json
import os
import resource
import time

import pika
import trafilatura


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ExtractPublishPipeline:
    def open_spider(self, spider):
        self.exchange = os.environ["PEER_EXCHANGE"]
        self.queue = os.environ["PEER_QUEUE"]
        self.conn = pika.BlockingConnection(pika.URLParameters(os.environ.get(
            "PEER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")))
        self.ch = self.conn.channel()
        self.ch.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        self.ch.queue_declare(self.queue, durable=True)
        self.ch.queue_bind(self.queue, self.exchange, routing_key="#")
        self.ch.confirm_delivery()
        self.items = self.empty = self.errors = 0
        self.t0 = time.time()
        self.cpu0 = _cpu()
        self.last = self.t0
        self.stats_file = getattr(spider, "stats_file", None)

    def process_item(self, item, spider):
        html = item.pop("html")
        try:
            out = trafilatura.extract(html, url=item["url"], with_metadata=True, output_format="json")
        except Exception:  # noqa: BLE001 - the peer keeps going, as paperboy does
            out = None
            self.errors += 1
        if out:
            doc = json.loads(out)
            doc["k"] = item["k"]
            body = json.dumps(doc).encode()
            key = "article"
        else:
            self.empty += 1
            body = json.dumps({"url": item["url"], "k": item["k"], "outcome": "no_content"}).encode()
            key = "outcome.skipped"
        self.ch.basic_publish(self.exchange, key, body,
                              pika.BasicProperties(content_type="application/json", delivery_mode=2),
                              mandatory=True)
        self.items += 1
        self.last = time.time()
        return {"url": item["url"]}

    def close_spider(self, spider):
        cpu = _cpu() - self.cpu0
        elapsed = max(self.last - self.t0, 1e-9)
        stats = {
            "pages": self.items,
            "articles": self.items - self.empty,
            "empty": self.empty,
            "errors": self.errors,
            "elapsed_s": elapsed,
            "pages_per_s": self.items / elapsed,
            "cpu_s": cpu,
            "cpu_ms_per_page": cpu * 1e3 / max(self.items, 1),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if self.stats_file:
            with open(self.stats_file, "w") as f:
                json.dump(stats, f)
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass
