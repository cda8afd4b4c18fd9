"""Benchmarks: figures and ratios to a peer measured back to back in the same process.

The machine is shared and noisy, so every figure is a median over interleaved
repetitions (ours, theirs, ours, theirs, ...) with the same thread count for both.
Tests never assert these numbers; they are printed for people and for issue notes.
"""
from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from golden.engine import forward
from golden.genweights import random_weights, synthetic_image
from golden.network import load_network, parse_network
from golden.weights import write_weights


@dataclass(frozen=True)
class BenchResult:
    model: str
    threads: int
    ours_ms: float
    peer_ms: float
    peer: str

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.peer_ms

    def line(self) -> str:
        return (f"{self.model:<14} threads={self.threads}  golden {self.ours_ms:8.1f} ms   "
                f"{self.peer} {self.peer_ms:8.1f} ms   ratio {self.ratio:5.2f}x")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def interleaved_medians(fns: list[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Median wall time (ms) of each function, run in turn ``repeats`` times."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) for t in times]


def bench_float(cfg: str | Path, weights: str | Path | None = None, threads: tuple[int, ...] = (2, 1),
                repeats: int = 7, seed: int = 0, log: Callable[[str], None] = print) -> list[BenchResult]:
    """Golden FLOAT forward vs OpenCV DNN's Darknet importer on the same input and weights."""
    import cv2  # test/bench dependency only

    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            net = random_weights(parse_network(cfg), seed)
            weights = Path(tmp) / "random.weights"
            write_weights(net, weights)
        else:
            net = load_network(cfg, weights)
        cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    x = synthetic_image(net.input_shape, np.random.default_rng(seed))
    out_names = cvnet.getUnconnectedOutLayersNames()

    def run_cv() -> object:
        cvnet.setInput(x[None])
        return cvnet.forward(out_names)

    results = []
    for n in threads:
        cv2.setNumThreads(n)
        with threadpool_limits(limits=n):
            ours, peer = interleaved_medians([lambda: forward(net, x, keep_all=False), run_cv], repeats)
        res = BenchResult(net.name, n, ours, peer, f"opencv-{cv2.__version__}")
        log(res.line())
        results.append(res)
    log(f"peak RSS {peak_rss_mib():.0f} MiB")
    return results
