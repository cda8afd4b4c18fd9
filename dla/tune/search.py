"""The search: per-layer sensitivity, then greedy lowering with measured refinement.

Every point below is a real INT run (``dla.tune.evaluate``); nothing is estimated, and the
final choice is the cheapest *measured* point that meets the budget.

1. **Baseline** — the first option of every dimension (all-int8 with the default space).
2. **Sensitivity** — every single change from the baseline (one layer's one dimension set to
   another option, or one refinement switched on), measured alone: its metric change
   ``Δdrop`` and cost change ``Δcost`` against the baseline, and the layer's isolated SQNR
   (CROSS: the layer run from the INT run's own input, first image) in that configuration.
3. **Starting points** — (a) the baseline if it meets the budget; otherwise the *repair*:
   the changes that improve the metric (``Δdrop < 0``), ranked by added cost per metric
   gained, applied as cumulative prefixes (at most :data:`MAX_REPAIR`), the cheapest prefix
   that meets the budget; (b) the *headroom* start: every improving change at once, the
   most accurate state, which leaves more budget for lowering.  A start that misses the
   budget is not lowered.
4. **Lowering** from each start — the changes that save cost (``Δcost < 0``), ranked by
   metric lost per cost saved (``max(Δdrop, 0) / −Δcost``), applied as cumulative prefixes;
   the longest prefix that meets the budget is found by a batched bisection
   (:data:`BATCH` prefixes measured per round, in parallel).
5. **Refinement** — from the state so reached, every remaining saving change (and every
   improving change of the state taken back) is measured alone on top of it; the cheapest
   result that meets the budget is kept, and the round repeats with the changes that still
   met it, until none does.
6. **Rescue** — the first (cheapest) prefix of step 4 that missed the budget gets the
   improving changes it lacks, as cumulative prefixes like the repair; one that meets the
   budget and beats the best so far is refined as in step 5.

The batches are planned from measured values only, never from the number of workers, so the
same points are measured with ``-j 1`` and ``-j N``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dla.tune.parallel import Evaluator
from dla.tune.space import Config, Move, SearchSpace

BATCH = 3
"""Prefixes measured per bisection round."""
MAX_REPAIR = 8
"""Most improving changes combined in the repair phase."""
EPS = 1e-12


@dataclass
class Point:
    """One measured configuration."""

    key: str
    phase: str
    label: str
    config: Config
    data: dict[str, Any]
    drop: float
    meets: bool

    @property
    def id(self) -> str:
        return self.key[:12]

    def cost(self, name: str) -> float:
        return float(self.data["cost"][name])


@dataclass
class Sensitivity:
    move: Move
    point: Point
    delta_drop: float
    delta_cost: float


@dataclass
class Search:
    """Runs the method above; ``points`` holds every measured point in the order measured."""

    space: SearchSpace
    evaluator: Evaluator
    metric_key: str
    max_drop: float
    cost_key: str
    reference: float | None = None  # FLOAT's metric (or, for sqnr, the baseline's)
    on_best: Callable[[Point], None] | None = None
    points: dict[str, Point] = field(default_factory=dict)
    infeasible: list[dict[str, str]] = field(default_factory=list)
    sensitivity: list[Sensitivity] = field(default_factory=list)
    baseline: Point | None = None
    expected: int = 0  # points this search expects to measure in all (for a progress bar's ETA)

    # ------------------------------------------------------------------ measuring
    def drop_of(self, metrics: dict[str, float]) -> float:
        assert self.reference is not None
        v = metrics[self.metric_key]
        return self.reference - v if math.isfinite(v) or math.isfinite(self.reference) else 0.0

    def measure(self, items: list[tuple[Config, str, str]]) -> list[Point | None]:
        """Measure every ``(config, phase, label)`` (one batch); ``None`` for an infeasible one."""
        results = self.evaluator.run([c for c, _, _ in items])
        out: list[Point | None] = []
        for (config, phase, label), data in zip(items, results):
            key = self.evaluator.key(config)
            if "infeasible" in data:
                if all(x["label"] != label for x in self.infeasible):
                    self.infeasible.append({"label": label, "reason": data["infeasible"]})
                out.append(None)
                continue
            if key not in self.points:
                if self.reference is None:  # sqnr: the baseline is the reference
                    self.reference = data["metrics"][self.metric_key]
                drop = self.drop_of(data["metrics"])
                self.points[key] = Point(key, phase, label, config, data, drop, drop <= self.max_drop + EPS)
                if self.on_best and (best := self.best()) is not None and best.key == key:
                    self.on_best(best)
            out.append(self.points[key])
        return out

    def cost(self, p: Point) -> float:
        return p.cost(self.cost_key)

    def rank(self, p: Point) -> tuple[float, float, float, str]:
        """Order of preference among points meeting the budget: the cost, then the drop, then
        cycles (the chosen point is then always on the Pareto front of :func:`pareto`)."""
        return (self.cost(p), p.drop, p.cost("cycles"), p.key)

    def best(self) -> Point | None:
        """The cheapest point meeting the budget (:meth:`rank`); if none does, the smallest
        drop (then cost)."""
        meeting = [p for p in self.points.values() if p.meets]
        if meeting:
            return min(meeting, key=self.rank)
        return min(self.points.values(), key=lambda p: (p.drop, self.cost(p), p.key), default=None)

    # ------------------------------------------------------------------ phases
    def run(self) -> Point | None:
        base_config = self.space.baseline()
        (self.baseline,) = self.measure([(base_config, "baseline", "baseline")])
        if self.baseline is None:
            from golden.errors import UserInputError

            raise UserInputError(f"the baseline of the search space cannot run on this hardware: "
                                 f"{self.infeasible[-1]['reason']}")
        base = self.baseline
        moves = self.space.moves()
        self.expected = 1 + 2 * len(moves)
        pts = self.measure([(base_config.with_move(m), "sensitivity", m.label) for m in moves])
        for m, p in zip(moves, pts):
            if p is not None:
                self.sensitivity.append(Sensitivity(m, p, p.drop - base.drop, self.cost(p) - self.cost(base)))
        improving = sorted((s for s in self.sensitivity if s.delta_drop < -EPS),
                           key=lambda s: (max(s.delta_cost, 0.0) / -s.delta_drop, s.delta_drop, s.move.label))
        savings = sum(s.delta_cost < 0 for s in self.sensitivity)
        per_start = BATCH * math.ceil(math.log(savings + 2, BATCH + 1)) + savings
        self.expected = len(self.points) + (0 if base.meets else min(len(improving), MAX_REPAIR)) + \
            bool(improving) + per_start * (1 + bool(improving))
        starts: list[tuple[Config, list[Move]]] = []
        if base.meets:
            starts.append((base_config, []))
        elif improving:
            fixed = self._repair(base_config, improving)
            if fixed is not None:
                starts.append(fixed)
        if improving:
            head = self._compose(base_config, [s.move for s in improving])
            (p,) = self.measure([(head[0], "search", "headroom: every improving change")])
            if p is not None and p.meets and all(self.evaluator.key(head[0]) != self.evaluator.key(c) for c, _ in starts):
                starts.append(head)
        for config, applied in starts:
            self._lower(config, applied)
        return self.best()

    def _compose(self, config: Config, moves: list[Move]) -> tuple[Config, list[Move]]:
        """``config`` with ``moves`` applied in order, skipping one that sets a (layer,
        dimension) an earlier one already set."""
        taken: set[tuple[int | None, str]] = set()
        applied = []
        for m in moves:
            slot = (m.layer, m.dim if m.layer is not None else str(m.value))
            if slot in taken:
                continue
            taken.add(slot)
            config = config.with_move(m)
            applied.append(m)
        return config, applied

    def _repair(self, base: Config, improving: list[Sensitivity]) -> tuple[Config, list[Move]] | None:
        prefixes = [self._compose(base, [s.move for s in improving[:k]]) for k in range(1, min(len(improving), MAX_REPAIR) + 1)]
        pts = self.measure([(c, "search", f"repair: {', '.join(m.label for m in ms)}") for c, ms in prefixes])
        ok = [(self.rank(p), k) for k, p in enumerate(pts) if p is not None and p.meets]
        return prefixes[min(ok)[1]] if ok else None

    def _savings(self, applied: list[Move]) -> list[Move]:
        taken = {(m.layer, m.dim) for m in applied}
        saving = sorted((s for s in self.sensitivity if s.delta_cost < 0 and (s.move.layer, s.move.dim) not in taken),
                        key=lambda s: (max(s.delta_drop, 0.0) / -s.delta_cost, s.delta_cost, s.move.label))
        return [s.move for s in saving]

    def _lower(self, start: Config, applied: list[Move]) -> None:
        cands = self._savings(applied)
        prefixes = {0: self._compose(start, [])}
        lo, hi = 0, len(cands) + 1
        while hi - lo > 1:
            ks = sorted({lo + max(1, round((hi - lo) * j / (BATCH + 1))) for j in range(1, BATCH + 1)} & set(range(lo + 1, hi)))
            for k in ks:
                prefixes[k] = self._compose(start, cands[:k])
            pts = self.measure([(prefixes[k][0], "search", f"lower: {k} change(s) by sensitivity") for k in ks])
            passed = [k for k, p in zip(ks, pts) if p is not None and p.meets]
            new_lo = max(passed, default=lo)
            failed = [k for k, p in zip(ks, pts) if k > new_lo and (p is None or not p.meets)]
            lo, hi = new_lo, min(failed, default=hi)
        state, moves = prefixes[lo][0], applied + prefixes[lo][1]
        self._refine(state, moves, cands[lo:])
        if hi <= len(cands):  # the first prefix that missed the budget: can improving changes rescue it?
            self._rescue(prefixes[hi][0], applied + prefixes[hi][1], cands[hi:])

    def _rescue(self, config: Config, moves: list[Move], rest: list[Move]) -> None:
        """Repair a cheaper point that just missed the budget with the improving changes it
        lacks (cumulative prefixes, as in the repair phase); a rescued point that beats the
        best so far is refined like the others."""
        taken = {(m.layer, m.dim if m.layer is not None else str(m.value)) for m in moves}
        improving = sorted((s for s in self.sensitivity if s.delta_drop < -EPS and
                            (s.move.layer, s.move.dim if s.move.layer is not None else str(s.move.value)) not in taken),
                           key=lambda s: (max(s.delta_cost, 0.0) / -s.delta_drop, s.delta_drop, s.move.label))
        if not improving:
            return
        best = self.best()
        prefixes = [self._compose(config, [s.move for s in improving[:k]])
                    for k in range(1, min(len(improving), MAX_REPAIR) + 1)]
        pts = self.measure([(c, "search", f"rescue: {', '.join(m.label for m in ms)}") for c, ms in prefixes])
        ok = [(self.rank(p), k) for k, p in enumerate(pts) if p is not None and p.meets
              and (best is None or not best.meets or self.rank(p) < self.rank(best))]
        if ok:
            k = min(ok)[1]
            self._refine(prefixes[k][0], moves + prefixes[k][1], rest)

    def _refine(self, state: Config, moves: list[Move], rest: list[Move]) -> None:
        base = self.space.baseline()
        reverts = [Move(m.layer, m.dim, base.choice(m.layer).get(m.dim)) for m in moves
                   if m.layer is not None and any(s.move == m and s.delta_cost > 0 for s in self.sensitivity)]
        cands = [m for m in rest if (m.layer, m.dim) not in {(x.layer, x.dim) for x in moves}] + reverts
        state_point = self.points.get(self.evaluator.key(state))
        while cands:
            batch = [(state.with_move(m), "refine", f"{m.label} on the current best") for m in cands]
            pts = self.measure(batch)
            ok = [(self.rank(p), i) for i, p in enumerate(pts) if p is not None and p.meets
                  and (state_point is None or self.rank(p) < self.rank(state_point))]
            if not ok:
                return
            pick = min(ok)[1]
            state, state_point = batch[pick][0], pts[pick]
            slot = (cands[pick].layer, cands[pick].dim)
            passed = {i for _, i in ok} - {pick}
            cands = [m for i, m in enumerate(cands) if i in passed and (m.layer, m.dim) != slot]


def pareto(points: list[Point], cost_key: str, metric_key: str) -> list[Point]:
    """The non-dominated points in (cost: lower is better, metric: higher is better), by cost."""
    front: list[Point] = []
    best = -math.inf
    for p in sorted(points, key=lambda p: (p.cost(cost_key), -p.data["metrics"][metric_key], p.cost("cycles"), p.key)):
        v = p.data["metrics"][metric_key]
        if v > best:
            front.append(p)
            best = v
    return front


__all__ = ["BATCH", "MAX_REPAIR", "Point", "Search", "Sensitivity", "pareto"]
