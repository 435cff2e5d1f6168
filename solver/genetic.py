"""A genetic algorithm over points of the space, as GAMMA does for mappings.

A population of legal points evolves for `generations`: parents are picked by tournament, a child of
two parents of the same binding takes each dim's tile chain, each tensor's placement and each level's
stationary tensor from one parent or the other (uniform crossover of the per-dim chains), and is
mutated with probability `mutation` by a move of `solver.neighbourhood`; an illegal child is
replaced by a mutated copy of a parent, a duplicate within the generation is mutated. The `elite`
best points and the best point of every binding survive unchanged (bindings never cross, so each
keeps a niche); the second parent comes from the first one's binding. Seeded.

    >>> from mapper.spec.acg import load_acg
    >>> from mapper.spec.workload import make_layer
    >>> layer = make_layer("g", "C[m,n] += A[m,k] * B[k,n]", {"m": 8, "n": 8, "k": 8},
    ...                    {"A": "int8", "B": "int8", "C": "int32"})
    >>> solve(layer, load_acg("tiny"), "latency", None, GeneticOptions(population=8, generations=5)).status
    'feasible'
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mapper.spec.acg import ACG
from mapper.spec.workload import Layer
from solver.neighbourhood import random_neighbour
from solver.options import option
from solver.search import Candidate, LocalSearchOptions, Scorer, starts
from solver.space import Point, Solution, Space, double_choices, spaces_of


@dataclass(frozen=True)
class GeneticOptions(LocalSearchOptions):
    population: int = option(24, 2, 10_000, "points per generation")
    generations: int = option(60, 1, 10**6, "generations bred after the first")
    mutation: float = option(0.4, 0.0, 1.0, "probability that a child is mutated (one neighbourhood move)")
    elite: int = option(2, 0, 1000, "best points kept unchanged each generation")
    tournament: int = option(3, 1, 100, "points drawn per parent selection (the best is the parent)")


def solve(layer: Layer, acg: ACG, objective: str, time_limit: float | None, options: GeneticOptions) -> Solution:
    spaces = spaces_of(layer, acg)
    rng = random.Random(options.seed)
    scorer = Scorer(spaces, acg, objective, options.budget(time_limit))
    population = starts(scorer, rng, options.population, options.greedy_start)
    for _ in range(options.generations):
        if scorer.spent() or not population:
            break
        ranked = sorted(population, key=scorer.key)
        children = ranked[:min(options.elite, len(ranked))]
        for k in sorted({c[0] for c in ranked}):  # every binding keeps its best: a niche for crossover
            best = next(c for c in ranked if c[0] == k)
            if best not in children:
                children.append(best)
        while len(children) < options.population and not scorer.spent():
            a = select(ranked, scorer, rng, options.tournament)
            b = select([c for c in ranked if c[0] == a[0]], scorer, rng, options.tournament)
            child = breed(scorer, a, b, rng, options.mutation)
            if child in children:  # a copy adds nothing: mutate it (keeps the population diverse)
                near = random_neighbour(scorer.spaces[child[0]], child[1], scorer.acg, rng)
                child = (child[0], near) if near is not None else None
            if child is not None and scorer.score(child) is not None:
                children.append(child)
        population = children
    return scorer.solution("genetic", scorer.spent())


def select(population: list[Candidate], scorer: Scorer, rng: random.Random, size: int) -> Candidate:
    """Tournament selection: the best (least `Scorer.key`) of `size` points drawn at random."""
    return min((rng.choice(population) for _ in range(size)), key=scorer.key)


def breed(scorer: Scorer, a: Candidate, b: Candidate, rng: random.Random, mutation: float) -> Candidate | None:
    """A legal child of `a` and `b` (crossover when they share a binding, then maybe a mutation), else
    a mutated copy of `a`; None when neither is legal."""
    k, space = a[0], scorer.spaces[a[0]]
    child = crossover(space, a[1], b[1], rng) if b[0] == k else a[1]
    if child == a[1] or rng.random() < mutation:
        child = random_neighbour(space, child, scorer.acg, rng) or child
    if scorer.mapping((k, child)) is None:
        child = random_neighbour(space, a[1], scorer.acg, rng)
    return (k, child) if child is not None else None


def crossover(space: Space, a: Point, b: Point, rng: random.Random) -> Point:
    """Uniform crossover: each dim's tile chain, tensor's path and level's stationary tensor from a
    parent drawn at random; buffering bits from either parent, on the child's paths."""
    def pick(x, y):
        return tuple(u if rng.random() < 0.5 else v for u, v in zip(x, y, strict=True))
    paths = pick(a.paths, b.paths)
    on = set(double_choices(space, paths))
    # In sorted order: the random draws must not follow a set's (hash-seeded) iteration order.
    double = tuple(p for p in sorted(set(a.double) | set(b.double)) if p in on and
                   (p in a.double and p in b.double or rng.random() < 0.5))
    return Point(pick(a.chains, b.chains), paths, pick(a.stationary, b.stationary), double)
