"""Which models may take a call, and in what order (pure: no I/O, no clock).

Candidates are the enabled models of the requested type offering every requested
capability within the latency and price limits. Specialties rank, they do not filter.
Each candidate gets a score in [0, 1] from its registered priors blended with what the
gateway observed (``Observation``); observation weighs n / (n + PRIOR_WEIGHT) after n
calls, so it dominates as it accumulates:

    latency  = fastest_latency / latency          (blended EWMA latency + TTFT)
    cost     = cheapest_price / price             (mean of input and output price per 1k)
    quality  = observed / best_observed           (observed quality, below)
    score    = Σ weight[strategy] · part,  times (1 - error_rate),  plus specialty bonus

Quality is observed, not self-declared: consumers rate generations (``POST /v1/feedback``,
scores in [0, 1]) and a model's observed quality blends its n ratings with its registered
``accuracy_score`` (0.5 when not given) as the prior, worth w0 = FEEDBACK_PRIOR_WEIGHT = 5
ratings:

    observed_quality = (w0 · accuracy_score + Σ scores) / (w0 + n)

With no ratings it is the registered score; each rating moves it, and after n ratings the
claim weighs 5 / (5 + n). A model claiming 0.99 rated 0.1 every time falls below an honest
0.8 (unrated) after 2 ratings: (5 · 0.99 + 2 · 0.1) / 7 = 0.74.

Near-equal candidates (within SPREAD of the best) share the first place by weighted
random choice, so that load spreads instead of piling on one model.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ai1net.server.errors import NoCandidate, NotFound
from ai1net.server.registry import ModelRecord

WEIGHTS = {  # latency, cost, quality
    "balanced": (0.35, 0.30, 0.35),
    "latency": (0.90, 0.05, 0.05),
    "cost": (0.10, 0.80, 0.10),
    "quality": (0.05, 0.05, 0.90),
}
EFFICIENCY_BONUS = {"low": 0.0, "medium": 0.02, "high": 0.05}
SPECIALTY_BONUS = 0.10
PRIOR_WEIGHT = 5.0
# How many ratings the registered accuracy_score counts as in observed quality.
FEEDBACK_PRIOR_WEIGHT = 5.0
DEFAULT_LATENCY_MS = 1000.0
SPREAD = 0.05
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RouteRequest:
    type: str = "text"
    capabilities: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    strategy: str = "balanced"
    max_latency_ms: float | None = None
    max_price_per_1k_tokens: float | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    samples: int
    latency_ms: float
    error_rate: float
    available: bool = True


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class Plan:
    models: tuple[ModelRecord, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class Ratings:
    """A model's ratings so far: how many, and the sum of their scores."""

    count: int = 0
    total: float = 0.0


NO_RATINGS = Ratings()
Observe = Callable[[str], Observation | None]
Rated = Callable[[str], Ratings]


def _unrated(_name: str) -> Ratings:
    return NO_RATINGS


def plan_explicit(name: str, fallbacks: Sequence[str],
                  find: Callable[[str], ModelRecord | None]) -> Plan:
    """The named model, then its fallbacks; never anything the caller did not name."""
    models = []
    for position, wanted in enumerate((name, *fallbacks)):
        model = find(wanted)
        if model is None:
            field = "model" if position == 0 else "fallbacks"
            raise NotFound(f"{field}: no model named {wanted!r}", field=field)
        if model.enabled:
            models.append(model)
    if not models:
        raise NoCandidate(f"model {name!r} is disabled")
    return Plan(tuple(models), "explicit" if not fallbacks else "explicit with fallbacks")


def plan_routed(models: Iterable[ModelRecord], request: RouteRequest, observe: Observe,
                rng: random.Random, rated: Rated = _unrated) -> Plan:
    pool = candidates(models, request)
    observed = {m.name: observe(m.name) for m in pool}
    available = [m for m in pool if (o := observed[m.name]) is None or o.available]
    pool = available or pool
    quality = {m.name: quality_of(m, rated(m.name)) for m in pool}
    norms = Norms.of(pool, observed, quality)
    scores = {m.name: score(m, observed[m.name], request, norms, quality[m.name])
              for m in pool}
    ranked = sorted(pool, key=lambda m: (-scores[m.name], m.name))
    ranked = _spread(ranked, scores, rng)
    best = ranked[0]
    return Plan(tuple(ranked[:MAX_ATTEMPTS]),
                f"{request.strategy}: {best.name} scored {scores[best.name]:.2f} "
                f"of {len(pool)} candidates")


def candidates(models: Iterable[ModelRecord], request: RouteRequest) -> list[ModelRecord]:
    """Enabled models meeting every constraint; NoCandidate names the one that emptied it."""
    pool = [m for m in models if m.enabled]
    steps: list[tuple[str, Callable[[ModelRecord], bool]]] = [
        (f"type {request.type!r}", lambda m: m.type == request.type),
        *((f"capability {c!r}", _offering(c)) for c in request.capabilities),
    ]
    if request.max_latency_ms is not None:
        limit = request.max_latency_ms
        steps.append((f"max_latency_ms {limit:g}", lambda m: m.avg_latency_ms <= limit))
    if request.max_price_per_1k_tokens is not None:
        cap = request.max_price_per_1k_tokens * 1e9
        steps.append((f"max_price_per_1k_tokens {request.max_price_per_1k_tokens:g}",
                      lambda m: max(m.input_price_nanos, m.output_price_nanos) <= cap))
    if not pool:
        raise NoCandidate("no enabled model is registered")
    for label, keep in steps:
        pool = [m for m in pool if keep(m)]
        if not pool:
            raise NoCandidate(f"no enabled model matches {label}")
    return pool


@dataclass(frozen=True, slots=True)
class Norms:
    """The best of each quantity among the candidates, each score's yardstick."""

    fastest: float
    cheapest: float
    best_quality: float

    @classmethod
    def of(cls, pool: Sequence[ModelRecord], observed: Mapping[str, Observation | None],
           quality: Mapping[str, float] | None = None) -> Norms:
        return cls(fastest=min(latency_of(m, observed.get(m.name)) for m in pool),
                   cheapest=min(price_of(m) for m in pool),
                   best_quality=max(quality[m.name] if quality else quality_of(m)
                                    for m in pool) or 1.0)


def score(model: ModelRecord, observed: Observation | None, request: RouteRequest,
          norms: Norms, quality: float | None = None) -> float:
    w_latency, w_cost, w_quality = WEIGHTS[request.strategy]
    quality = quality_of(model) if quality is None else quality
    total = (w_latency * norms.fastest / latency_of(model, observed)
             + w_cost * (norms.cheapest + 1.0) / (price_of(model) + 1.0)
             + w_quality * quality / norms.best_quality)
    total += EFFICIENCY_BONUS.get(model.cost_efficiency, 0.0) * (w_cost / 0.3)
    if request.specialties:
        wanted = {s.lower() for s in request.specialties}
        matched = len(wanted & {s.lower() for s in model.specialties})
        total += SPECIALTY_BONUS * matched / len(wanted)
    if observed is not None and observed.samples:
        total *= 1.0 - _observed_weight(observed) * observed.error_rate
    return total


def latency_of(model: ModelRecord, observed: Observation | None) -> float:
    prior = model.avg_latency_ms or DEFAULT_LATENCY_MS
    if observed is None or not observed.samples:
        return max(prior, 1.0)
    weight = _observed_weight(observed)
    return max((1 - weight) * prior + weight * observed.latency_ms, 1.0)


def price_of(model: ModelRecord) -> float:
    """Mean price per 1k tokens, in nano-dollars."""
    return (model.input_price_nanos + model.output_price_nanos) / 2


def quality_of(model: ModelRecord, ratings: Ratings = NO_RATINGS) -> float:
    """Observed quality: the ratings blended with the registered score (the docstring
    above)."""
    prior = model.accuracy_score or 0.5
    return (FEEDBACK_PRIOR_WEIGHT * prior + ratings.total) / (FEEDBACK_PRIOR_WEIGHT
                                                              + ratings.count)


def _observed_weight(observed: Observation) -> float:
    return observed.samples / (observed.samples + PRIOR_WEIGHT)


def _offering(capability: str) -> Callable[[ModelRecord], bool]:
    return lambda model: model.offers(capability)


def _spread(ranked: list[ModelRecord], scores: dict[str, float],
            rng: random.Random) -> list[ModelRecord]:
    best = scores[ranked[0].name]
    near = [m for m in ranked if scores[m.name] >= best * (1 - SPREAD)]
    if len(near) < 2:
        return ranked
    first = rng.choices(near, weights=[scores[m.name] for m in near])[0]
    return [first, *(m for m in ranked if m is not first)]
