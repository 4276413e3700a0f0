"""Prometheus metrics of one service instance (own registry: several apps per process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Every metric is named codekiln_sandbox_<name>.
NAMESPACE, SUBSYSTEM = "codekiln", "sandbox"


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, subsystem=SUBSYSTEM, registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, namespace=NAMESPACE, subsystem=SUBSYSTEM, registry=r)

        self.runs = counter("runs", "Runs finished, by language and status", "language", "status")
        self.run_seconds = Histogram(
            "run_seconds",
            "Time from admission to result, per run",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            namespace=NAMESPACE,
            subsystem=SUBSYSTEM,
            registry=r,
        )
        self.http = counter(
            "http_requests", "HTTP requests by route and status code", "route", "code"
        )
        self.rejected = counter("rejected", "Runs refused with 429 because the queue was full")
        self.queue_depth = gauge("queue_depth", "Admitted runs waiting for or holding a container")
        self.idle = gauge("pool_idle", "Warm containers idle")
        self.spares = gauge("pool_spares", "Spare containers started ahead")
        self.containers = gauge("pool_containers", "Live containers in the pool")
        self.recycled = counter("containers_recycled", "Containers replaced, by reason", "reason")
        self.started = counter("containers_started", "Containers started")
        self.start_failures = counter("container_start_failures", "Container starts that failed")
        self.limit_updates = counter(
            "memory_limit_updates", "Engine calls changing a container's memory limit before a job"
        )
        self.reaped = counter("orphans_reaped", "Orphan containers removed at start")
