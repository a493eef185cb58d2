# The peer of paperboy's end-to-end benchmark: Scrapy + trafilatura + pika, tuned as a careful user would
# for a throughput test on servers of one's own (see ../README.md).
BOT_NAME = "peer"
SPIDER_MODULES = ["peer.spiders"]
NEWSPIDER_MODULE = "peer.spiders"
ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS = 64
CONCURRENT_REQUESTS_PER_DOMAIN = 8
CONCURRENT_REQUESTS_PER_IP = 0
DOWNLOAD_DELAY = 0
RANDOMIZE_DOWNLOAD_DELAY = False
AUTOTHROTTLE_ENABLED = False
COOKIES_ENABLED = False
RETRY_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"
HTTPCACHE_ENABLED = False
ITEM_PIPELINES = {"peer.pipelines.ExtractPublishPipeline": 300}
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
