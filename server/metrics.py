"""Prometheus metrics of one hub process, in a registry owned by the app (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("cimhub_connections", "Open WebSocket connections", registry=r)
        self.subscriptions = Gauge("cimhub_subscriptions", "Live subscriptions on this process", registry=r)
        self.topics = Gauge("cimhub_topics", "Topics with at least one local subscriber", registry=r)
        self.mutations = Counter(
            "cimhub_mutations_total", "Mutations by name and outcome", ["name", "outcome"], registry=r
        )
        self.deliveries = Counter("cimhub_deliveries_total", "Patch frames queued to subscribers", registry=r)
        self.delivery_latency = Histogram(
            "cimhub_commit_to_delivery_seconds",
            "From commit (the patch's ts) to the frame being handed to the socket",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.queue_overflows = Counter(
            "cimhub_queue_overflows_total", "Connections closed because their send queue overflowed", registry=r
        )
        self.resyncs = Counter(
            "cimhub_resyncs_total", "Subscriptions caught up after a gap, by how", ["how"], registry=r
        )
        self.catch_ups_waited_out = Counter(
            "cimhub_catch_ups_waited_out_total",
            "Resumes answered with a reset snapshot because every catch-up slot stayed busy (catch_up_wait_s)",
            registry=r,
        )
        self.broker_reconnects = Counter("cimhub_broker_reconnects_total", "Pub/sub listener reconnects", registry=r)
        self.errors = Counter("cimhub_client_errors_total", "Errors sent to clients, by code", ["code"], registry=r)
