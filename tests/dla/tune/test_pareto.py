"""The Pareto front and the choice, against a brute-force definition on random points."""
from __future__ import annotations

import numpy as np

from dla.tune.search import Point, pareto
from dla.tune.space import Config


def _points(rng: np.random.Generator, n: int) -> list[Point]:
    out = []
    for i in range(n):  # few distinct values, so ties in cost and in metric occur
        cost, metric = int(rng.integers(0, 8)), float(rng.integers(0, 6)) / 5
        out.append(Point(f"{i:012x}", "search", "", Config(()), {"cost": {"cycles": cost}, "metrics": {"m": metric}},
                         1 - metric, True))
    return out


def _dominated(p: Point, others: list[Point]) -> bool:
    c, m = p.cost("cycles"), p.data["metrics"]["m"]
    return any(q.cost("cycles") <= c and q.data["metrics"]["m"] >= m and
               (q.cost("cycles") < c or q.data["metrics"]["m"] > m) for q in others)


def test_the_front_is_exactly_the_non_dominated_points_one_per_tie() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        pts = _points(rng, int(rng.integers(1, 25)))
        front = pareto(pts, "cycles", "m")
        brute = {(p.cost("cycles"), p.data["metrics"]["m"]) for p in pts if not _dominated(p, pts)}
        assert {(p.cost("cycles"), p.data["metrics"]["m"]) for p in front} == brute
        assert len(front) == len(brute)  # equal (cost, metric) pairs appear once
        costs = [p.cost("cycles") for p in front]
        assert costs == sorted(costs) and all(not _dominated(p, pts) for p in front)
