"""Prometheus metrics of one service instance (own registry: several apps per process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "codekiln_sandbox_runs",
            "Runs finished, by language and status",
            ["language", "status"],
            registry=r,
        )
        self.run_seconds = Histogram(
            "codekiln_sandbox_run_seconds",
            "Time from admission to result, per run",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.http = Counter(
            "codekiln_sandbox_http_requests",
            "HTTP requests by route and status code",
            ["route", "code"],
            registry=r,
        )
        self.rejected = Counter(
            "codekiln_sandbox_rejected",
            "Runs refused with 429 because the queue was full",
            registry=r,
        )
        self.queue_depth = Gauge(
            "codekiln_sandbox_queue_depth",
            "Admitted runs waiting for or holding a container",
            registry=r,
        )
        self.idle = Gauge("codekiln_sandbox_pool_idle", "Warm containers idle", registry=r)
        self.spares = Gauge(
            "codekiln_sandbox_pool_spares", "Spare containers started ahead", registry=r
        )
        self.containers = Gauge(
            "codekiln_sandbox_pool_containers", "Live containers in the pool", registry=r
        )
        self.recycled = Counter(
            "codekiln_sandbox_containers_recycled",
            "Containers replaced, by reason",
            ["reason"],
            registry=r,
        )
        self.started = Counter(
            "codekiln_sandbox_containers_started", "Containers started", registry=r
        )
        self.start_failures = Counter(
            "codekiln_sandbox_container_start_failures",
            "Container starts that failed",
            registry=r,
        )
        self.limit_updates = Counter(
            "codekiln_sandbox_memory_limit_updates",
            "Engine calls changing a container's memory limit before a job",
            registry=r,
        )
        self.reaped = Counter(
            "codekiln_sandbox_orphans_reaped", "Orphan containers removed at start", registry=r
        )
