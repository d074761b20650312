"""Prometheus metrics of one API process (a registry per app, so tests can make many apps).

Requests are labelled by route template, never by raw path (an id in a label would grow
without bound). Work done in worker processes is counted here, in the API process, from the
outcomes the workers return, so nothing needs prometheus' multi-process mode.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
ANALYSIS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "observatory_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "observatory_http_request_duration_seconds",
            "Time from the first byte of a request to the end of its response.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analyses = Counter(
            "observatory_analyses",
            "Analyses that ended, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.analysis_duration = Histogram(
            "observatory_analysis_duration_seconds",
            "Processing time of completed analyses.",
            buckets=ANALYSIS_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "observatory_rate_limited",
            "Requests refused with 429, by tier.",
            ["tier"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "observatory_queue_depth", "Analyses waiting in this process's queue.", registry=r
        )
        self.running = Gauge(
            "observatory_analyses_running", "Analyses running in worker processes.", registry=r
        )
        self.pools_replaced = Gauge(
            "observatory_worker_pools_replaced",
            "Worker pools replaced after all their processes died.",
            registry=r,
        )

    def render(self, queue_stats: dict[str, Any], pool_stats: dict[str, Any]) -> bytes:
        self.queue_depth.set(queue_stats.get("queued", 0))
        self.running.set(queue_stats.get("running", 0))
        self.pools_replaced.set(pool_stats.get("pools_replaced", 0))
        return generate_latest(self.registry)
