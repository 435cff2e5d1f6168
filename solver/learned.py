"""Learned search with adaptive sampling, in the spirit of Chameleon (Ahn et al., ICLR 2020).

Measurements are the costly resource: a measurement lowers a candidate and runs it on the simulator
(`solver.search.Scorer.measure`). The search measures a few starting points, then, round after round:

1. fits a cost model to the measurements so far: ridge regression (NumPy) of log(measured figure)
   on the candidate's features (binding, log2 loop factors per level and dim, stationary tensors,
   placement, buffering bits and, with `prior`, log2 of the analytic cost model's figure);
2. proposes candidates: the legal neighbours of the best measured points and random points, and
   ranks them by the learned model, keeping a shortlist;
3. adaptive sampling: k-means over the shortlist's features (`batch` clusters); it measures the
   predicted best and, for every other cluster, the candidate closest to its centroid, so one round's
   measurements cover different regions rather than near-duplicates.

It stops after `measurements` measurements (or the time limit) and returns the best measured mapping.
Seeded and deterministic (k-means++ seeding with the strategy's generator, fixed iterations).

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> s = solve(layer, load_acg("tiny"), "latency", None, LearnedOptions(measurements=12))
    >>> s.status, s.measurements <= 12
    ('feasible', True)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.neighbourhood import neighbours
from solver.options import option
from solver.search import MAX_INSTRUCTIONS, Budget, Candidate, Scorer, random_candidate, starts
from solver.space import Solution, factors, spaces_of


@dataclass(frozen=True)
class LearnedOptions:
    measurements: int = option(48, 1, 10**6, "simulator measurements in all")
    initial: int = option(8, 1, 10_000, "starting points measured before the first model")
    batch: int = option(6, 1, 1000, "measurements per round (k-means clusters)")
    candidates: int = option(400, 1, 10**6, "candidates proposed per round")
    shortlist: int = option(4, 1, 100, "the best-predicted batch x shortlist candidates are clustered")
    parents: int = option(4, 1, 1000, "best measured points whose neighbours are proposed")
    ridge: float = option(0.01, 0.0, 1e6, "L2 regularisation of the learned model")
    prior: bool = option(True, help="the analytic cost model's figure is a feature (one evaluation each)")
    seed: int = option(0, 0, 2**31, "random seed (default: the run's --seed)")
    max_instructions: int = option(MAX_INSTRUCTIONS, 1, 10**8, "larger programs are not measured")
    greedy_start: bool = option(True, help="start from the greedy mapping of each binding too (else random only)")


def solve(layer: Layer, acg: ACG, objective: str, time_limit: float | None, options: LearnedOptions) -> Solution:
    spaces = spaces_of(layer, acg)
    rng = random.Random(options.seed)
    budget = Budget(time_limit, measurements=options.measurements, measure=True,
                    max_instructions=options.max_instructions, seed=options.seed)
    scorer = Scorer(spaces, acg, objective, budget)
    measured = {c: scorer.score(c) for c in starts(scorer, rng, min(options.initial, options.measurements),
                                                            options.greedy_start)}
    while measured and not scorer.spent():
        pool = [c for c in propose(scorer, measured, rng, options) if c not in measured]
        if not pool:
            break
        for cand in pick(scorer, measured, pool, rng, options):
            if scorer.spent():
                break
            measured[cand] = scorer.score(cand)
        measured = {c: v for c, v in measured.items() if v is not None}
    return scorer.solution("learned", scorer.spent())


def propose(scorer: Scorer, measured: dict[Candidate, object], rng: random.Random,
            options: LearnedOptions) -> list[Candidate]:
    """Neighbours of the best measured points and random points: up to `candidates`, legal and, with
    a prior, small enough to measure (deterministic order)."""
    best = sorted((c for c, v in measured.items() if v is not None), key=scorer.key)[:options.parents]
    pool = {}
    for k, point in best:
        if scorer.spent():
            return []
        for p in neighbours(scorer.spaces[k], point, scorer.acg):
            pool.setdefault((k, p), None)
    near = list(pool)
    if len(near) > options.candidates // 2:
        near = rng.sample(near, options.candidates // 2)
    out = dict.fromkeys(near)
    for _ in range(4 * options.candidates):
        if len(out) >= options.candidates or scorer.spent():
            break
        cand = random_candidate(scorer.spaces, rng)
        if scorer.mapping(cand) is not None:
            out.setdefault(cand, None)
    return [c for c in out if not scorer.spent() and (not options.prior or scorer.predict(c) is not None)]


def pick(scorer: Scorer, measured: dict[Candidate, object], pool: list[Candidate], rng: random.Random,
         options: LearnedOptions) -> list[Candidate]:
    """The candidates to measure this round: the learned model's best, then the representative
    (closest to the centroid) of each other k-means cluster of the shortlist."""
    train = [c for c, v in measured.items() if v is not None]
    x_train = np.array([features(scorer, c, options.prior) for c in train])
    y_train = np.array([math.log(max(float(measured[c]), 1e-12)) for c in train])
    x_pool = np.array([features(scorer, c, options.prior) for c in pool])
    mean, spread = x_train.mean(axis=0), x_train.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)  # a feature the measurements never varied stays unscaled
    predicted = fit_ridge((x_train - mean) / scale, y_train, options.ridge)((x_pool - mean) / scale)
    order = np.argsort(predicted, kind="stable")[:options.batch * options.shortlist]
    short = [pool[i] for i in order]
    points = (x_pool[order] - mean) / scale
    labels, centroids = kmeans(points, min(options.batch, len(short)), rng)
    chosen = [short[0]]
    for j, centroid in enumerate(centroids):
        members = [i for i in range(len(short)) if labels[i] == j]
        if members and labels[0] != j:
            chosen.append(short[min(members, key=lambda i: float(np.sum((points[i] - centroid) ** 2)))])
    return chosen


def features(scorer: Scorer, cand: Candidate, prior: bool) -> list[float]:
    """A fixed-length description of a candidate across the layer's spaces (padded to the deepest)."""
    k, point = cand
    space = scorer.spaces[k]
    depth = max(s.levels for s in scorer.spaces)
    out = [float(k == i) for i in range(len(scorer.spaces))]
    levels = factors(space, point)
    for d in space.dims:
        out += [math.log2(levels[j][d]) if j < len(levels) else 0.0 for j in range(depth)]
    spatial = dict(zip(space.dims, (c[-1] for c in point.chains), strict=True))
    out += [math.log2(spatial[d]) for d in space.dims]
    choices = list(dict.fromkeys(x for s in scorer.spaces for x in s.stationary))
    for j in range(depth - 1):
        x = point.stationary[j] if j < len(point.stationary) else None
        out += [float(x == c) for c in choices]
    out += [float(i) for i in point.paths]
    pairs = sorted({p for s in scorer.spaces for p in s.double})
    out += [float(p in point.double) for p in pairs]
    if prior:
        value = scorer.predict(cand)
        out.append(math.log2(float(value)) if value else 0.0)
    return out


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    """Ridge regression with an intercept; returns the predictor.

    >>> f = fit_ridge(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0]), 0.0)
    >>> [round(float(v), 6) for v in f(np.array([[3.0]]))]
    [7.0]
    """
    a = np.hstack([x, np.ones((len(x), 1))])
    penalty = alpha * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    w = np.linalg.lstsq(a.T @ a + penalty, a.T @ y, rcond=None)[0]
    return lambda q: np.hstack([q, np.ones((len(q), 1))]) @ w


def kmeans(points: np.ndarray, k: int, rng: random.Random, iterations: int = 20) -> tuple[list[int], np.ndarray]:
    """Lloyd's k-means with k-means++ seeding from `rng`: (label per point, centroids)."""
    centroids = [points[rng.randrange(len(points))]]
    while len(centroids) < k:
        d2 = np.min([np.sum((points - c) ** 2, axis=1) for c in centroids], axis=0)
        total = float(d2.sum())
        if total <= 0:
            break
        r, acc = rng.random() * total, 0.0
        for i, w in enumerate(d2):
            acc += float(w)
            if acc >= r:
                centroids.append(points[i])
                break
    c = np.array(centroids)
    labels = np.zeros(len(points), dtype=int)
    for _ in range(iterations):
        labels = np.argmin(((points[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
        c = np.array([points[labels == j].mean(axis=0) if np.any(labels == j) else c[j] for j in range(len(c))])
    return [int(v) for v in labels], c
