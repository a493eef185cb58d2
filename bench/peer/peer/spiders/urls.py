import time

import scrapy


class UrlsSpider(scrapy.Spider):
    """Fetch every URL of a file (one a line); each response becomes one item for the pipeline."""

    name = "urls"

    def __init__(self, urls=None, stats=None, **kw):
        super().__init__(**kw)
        if not urls:
            raise ValueError("-a urls=FILE is required")
        self.urls_file = urls
        self.stats_file = stats

    async def start(self):
        with open(self.urls_file) as f:
            for k, line in enumerate(f):
                url = line.strip()
                if url:
                    yield scrapy.Request(url, callback=self.parse, dont_filter=True,
                                         cb_kwargs={"k": k})

    def parse(self, response, k):
        yield {"url": response.url, "k": k, "status": response.status, "html": response.text,
               "fetched_at": time.time()}
