"""Prometheus metrics of one API process (a registry per app, so tests can make many apps).

Requests are labelled by route template, never by raw path (an id in a label would grow
without bound). Work done in worker processes is counted here, in the API process, from the
outcomes the workers return, so nothing needs prometheus' multi-process mode.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    generate_latest,
)

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

        self.audit_events = Counter(
            "observatory_audit_events",
            "Audit events: written, suppressed (refusals over the sampling budget), dropped "
            "(the writer's queue was full).",
            ["outcome"],
            registry=r,
        )
        self.retention_removed = Counter(
            "observatory_retention_removed",
            "What the scheduled retention removed: results, analyses (metadata), batch_items, "
            "audit_events, "
            "deliveries.",
            ["kind"],
            registry=r,
        )
        self.observer_calls = Counter(
            "observatory_observer_calls",
            "Calls to Ollama by outcome: ok, failed (bad answer or timeout), unavailable "
            "(unreachable, 5xx, busy), model_missing, breaker_open (refused without a call), "
            "cancelled.",
            ["outcome"],
            registry=r,
        )
        self.observer_breaker = Enum(
            "observatory_observer_breaker",
            "The Ollama circuit breaker's state as last reported by a worker process.",
            states=["closed", "half_open", "open"],
            registry=r,
        )

    def retained(self, removed: Any) -> None:
        for kind in ("results", "analyses", "batch_items", "deliveries", "audit_events"):
            self.retention_removed.labels(kind).inc(getattr(removed, kind))

    def observed(self, stats: dict[str, Any]) -> None:
        """What a worker's observer stage reported: its calls since its last report, and its
        breaker's state."""
        for outcome, n in stats.get("calls", {}).items():
            self.observer_calls.labels(outcome).inc(n)
        if stats.get("breaker") in ("closed", "half_open", "open"):
            self.observer_breaker.state(stats["breaker"])

    def render(self, queue_stats: dict[str, Any], pool_stats: dict[str, Any]) -> bytes:
        self.queue_depth.set(queue_stats.get("queued", 0))
        self.running.set(queue_stats.get("running", 0))
        self.pools_replaced.set(pool_stats.get("pools_replaced", 0))
        return generate_latest(self.registry)
