"""The reward server's counters and histograms, written in the Prometheus text format (``GET /metrics``).

Updated by the HTTP layer (one request: route, status, seconds) and by the queue's worker (one
engine call: pairs, failures); read by ``/metrics``. One lock guards all of it: the worker thread
and the event loop both write.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Histogram:
    """Cumulative buckets (``le`` = upper edge), their sum and count, as Prometheus keeps them."""

    def __init__(self, buckets):
        self.buckets, self.counts, self.total, self.n = tuple(buckets), [0] * len(buckets), 0.0, 0

    def observe(self, value: float) -> None:
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{edge}"}} {count}' for edge, count in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        brace = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{brace} {self.total}", f"{name}_count{brace} {self.n}"]


@dataclass
class Metrics:
    requests: Counter = field(default_factory=Counter)          # (route, status) -> count
    latency: dict = field(default_factory=dict)                 # route -> Histogram
    batch_pairs: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    pairs_scored: int = 0
    engine_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, status)] += 1
            self.latency.setdefault(route, Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def scored(self, pairs: int) -> None:
        """One engine call of ``pairs`` pairs succeeded."""
        with self.lock:
            self.batch_pairs.observe(pairs)
            self.pairs_scored += pairs

    def failed(self) -> None:
        """One engine call raised (each of its requests was answered with the error)."""
        with self.lock:
            self.engine_failures += 1

    def text(self, queue_pairs: int) -> str:
        with self.lock:
            out = ["# TYPE routerm_requests_total counter"]
            out += [f'routerm_requests_total{{route="{r}",status="{s}"}} {n}' for (r, s), n in sorted(self.requests.items())]
            out.append("# TYPE routerm_request_duration_seconds histogram")
            for route, hist in sorted(self.latency.items()):
                out += hist.lines("routerm_request_duration_seconds", f'route="{route}"')
            out.append("# TYPE routerm_batch_pairs histogram")
            out += self.batch_pairs.lines("routerm_batch_pairs")
            out += ["# TYPE routerm_pairs_scored_total counter", f"routerm_pairs_scored_total {self.pairs_scored}",
                    "# TYPE routerm_engine_failures_total counter", f"routerm_engine_failures_total {self.engine_failures}",
                    "# TYPE routerm_queue_pairs gauge", f"routerm_queue_pairs {queue_pairs}"]
        return "\n".join(out) + "\n"
