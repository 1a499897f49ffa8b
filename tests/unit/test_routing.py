"""server/routing.py: explicit plans, candidate filtering, strategies, load spreading."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from ai1net.server.errors import NoCandidate, NotFound
from ai1net.server.registry import ModelRecord
from ai1net.server.routing import (
    FEEDBACK_PRIOR_WEIGHT,
    MAX_ATTEMPTS,
    NO_RATINGS,
    Norms,
    Observation,
    Ratings,
    RouteRequest,
    _spread,
    candidates,
    plan_explicit,
    plan_routed,
    quality_of,
    score,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def model(name: str, **fields: Any) -> ModelRecord:
    """A record with plain defaults; prices in USD per 1k tokens for readability."""
    price_in = fields.pop("price_in", 0.002)
    price_out = fields.pop("price_out", 0.004)
    values: dict[str, Any] = {
        "id": f"mdl_{name}", "name": name, "owner": "key_owner", "type": "text",
        "endpoint": f"https://{name}.example/v1/generate", "auth_type": "none",
        "input_price_nanos": round(price_in * 1e9), "output_price_nanos": round(price_out * 1e9),
        "request_price_nanos": 0,
        "capabilities": ("chat",), "specialties": (), "avg_latency_ms": 300.0,
        "accuracy_score": 0.8, "cost_efficiency": "medium", "timeout_ms": 60_000,
        "first_byte_timeout_ms": 30_000, "max_response_bytes": 16 << 20,
        "max_event_bytes": 1 << 20, "max_concurrency": 100, "api": "ai1net",
        "upstream_model": "", "description": "", "enabled": True,
        "created_at": NOW, "updated_at": NOW, "has_credentials": False, "auth_headers": {},
    }
    values.update(fields)
    return ModelRecord(**values)


def never_observed(_name: str) -> Observation | None:
    return None


def route(models: list[ModelRecord], seed: int = 0,
          observe: Any = never_observed, **request: Any) -> list[str]:
    plan = plan_routed(models, RouteRequest(**request), observe, random.Random(seed))
    return [m.name for m in plan.models]


# -- plan_explicit -------------------------------------------------------------------------


def finder(*models: ModelRecord) -> Any:
    by_name = {m.name: m for m in models}
    return by_name.get


def test_explicit_plan_is_the_model_then_its_fallbacks_in_order():
    find = finder(model("a"), model("b"), model("c"))
    plan = plan_explicit("b", ["c", "a"], find)
    assert [m.name for m in plan.models] == ["b", "c", "a"]
    assert plan.reason == "explicit with fallbacks"
    plan = plan_explicit("a", [], find)
    assert [m.name for m in plan.models] == ["a"]
    assert plan.reason == "explicit"


def test_explicit_plan_names_the_missing_field():
    find = finder(model("a"))
    with pytest.raises(NotFound) as failure:
        plan_explicit("nope", [], find)
    assert failure.value.message.startswith("model:") and "'nope'" in failure.value.message
    with pytest.raises(NotFound) as failure:
        plan_explicit("a", ["gone"], find)
    assert failure.value.message.startswith("fallbacks:") and "'gone'" in failure.value.message


def test_explicit_plan_skips_disabled_models():
    find = finder(model("off", enabled=False), model("on"))
    assert [m.name for m in plan_explicit("off", ["on"], find).models] == ["on"]
    with pytest.raises(NoCandidate, match="'off' is disabled"):
        plan_explicit("off", [], find)


# -- candidates ----------------------------------------------------------------------------


POOL = [
    model("text-fast", capabilities=("chat", "Coding"), avg_latency_ms=100,
          price_in=0.01, price_out=0.02),
    model("text-cheap", capabilities=("chat",), avg_latency_ms=900,
          price_in=0.0001, price_out=0.0002),
    model("image", type="image", capabilities=("image-generation",)),
    model("text-off", enabled=False, capabilities=("chat", "coding", "vision")),
]


def names(models: list[ModelRecord]) -> list[str]:
    return [m.name for m in models]


def test_candidates_filter_by_every_constraint():
    assert names(candidates(POOL, RouteRequest())) == ["text-fast", "text-cheap"]
    assert names(candidates(POOL, RouteRequest(type="image"))) == ["image"]
    assert names(candidates(POOL, RouteRequest(capabilities=("coding",)))) == ["text-fast"]
    assert names(candidates(POOL, RouteRequest(capabilities=("CHAT", "coding")))) \
        == ["text-fast"]
    assert names(candidates(POOL, RouteRequest(max_latency_ms=500))) == ["text-fast"]
    assert names(candidates(POOL, RouteRequest(max_price_per_1k_tokens=0.001))) \
        == ["text-cheap"]
    # Specialties rank; they never filter.
    assert names(candidates(POOL, RouteRequest(specialties=("poetry",)))) \
        == ["text-fast", "text-cheap"]


@pytest.mark.parametrize(("request_", "says"), [
    (RouteRequest(type="audio"), "type 'audio'"),
    (RouteRequest(capabilities=("vision",)), "capability 'vision'"),
    (RouteRequest(capabilities=("chat", "translation")), "capability 'translation'"),
    (RouteRequest(max_latency_ms=50), "max_latency_ms 50"),
    (RouteRequest(max_price_per_1k_tokens=0.00001), "max_price_per_1k_tokens 1e-05"),
    (RouteRequest(type="image", capabilities=("chat",)), "capability 'chat'"),
])
def test_no_candidate_names_the_constraint_that_emptied_the_pool(request_: RouteRequest,
                                                                 says: str):
    with pytest.raises(NoCandidate) as failure:
        candidates(POOL, request_)
    assert says in failure.value.message


def test_no_candidate_without_enabled_models():
    for pool in ([], [model("off", enabled=False)]):
        with pytest.raises(NoCandidate, match="no enabled model is registered"):
            candidates(pool, RouteRequest())
    with pytest.raises(NoCandidate):
        plan_routed([], RouteRequest(), never_observed, random.Random(0))


# -- strategies ----------------------------------------------------------------------------

# Each is best at one thing, and far enough apart that no spreading blurs the ranking.
FAST = model("fast", avg_latency_ms=80, price_in=0.02, price_out=0.04, accuracy_score=0.7)
CHEAP = model("cheap", avg_latency_ms=1500, price_in=0.0001, price_out=0.0001,
              accuracy_score=0.6, cost_efficiency="high")
SMART = model("smart", avg_latency_ms=1200, price_in=0.03, price_out=0.06,
              accuracy_score=0.99, cost_efficiency="low")
ALLROUND = model("allround", avg_latency_ms=150, price_in=0.00015, price_out=0.00015,
                 accuracy_score=0.95)


@pytest.mark.parametrize(("strategy", "pool", "winner"), [
    ("latency", [FAST, CHEAP, SMART], "fast"),
    ("cost", [FAST, CHEAP, SMART], "cheap"),
    ("quality", [FAST, CHEAP, SMART], "smart"),
    ("balanced", [FAST, CHEAP, SMART, ALLROUND], "allround"),
])
def test_each_strategy_picks_its_model_from_priors(strategy: str, pool: list[ModelRecord],
                                                   winner: str):
    for seed in range(20):  # whatever the seed: the winner is clear, not a coin toss
        ranked = route(pool, seed=seed, strategy=strategy)
        assert ranked[0] == winner
        assert len(ranked) == min(len(pool), MAX_ATTEMPTS)
        assert len(set(ranked)) == len(ranked)


def test_plan_reason_says_what_won():
    plan = plan_routed([FAST, CHEAP, SMART], RouteRequest(strategy="latency"), never_observed,
                       random.Random(0))
    assert plan.reason.startswith("latency: fast scored")
    assert plan.reason.endswith("of 3 candidates")


def test_the_plan_keeps_at_most_max_attempts_models():
    pool = [model(f"m{i}", avg_latency_ms=100 * (i + 1)) for i in range(6)]
    ranked = route(pool, strategy="latency")
    assert len(ranked) == MAX_ATTEMPTS
    assert ranked == ["m0", "m1", "m2"]


def test_specialty_match_ranks_first_between_equals():
    plain = model("plain")
    expert = model("expert", specialties=("Technical Explanations",))
    for seed in range(20):
        assert route([plain, expert], seed=seed,
                     specialties=("technical explanations",))[0] == "expert"


def test_observed_errors_and_latency_outweigh_priors():
    a, b = model("a", avg_latency_ms=100), model("b", avg_latency_ms=200)
    assert route([a, b], strategy="latency")[0] == "a"

    def slow_a(name: str) -> Observation | None:
        return Observation(samples=200, latency_ms=2000, error_rate=0.0) if name == "a" else None

    assert route([a, b], observe=slow_a, strategy="latency")[0] == "b"

    def failing_a(name: str) -> Observation | None:
        return Observation(samples=200, latency_ms=100, error_rate=0.9) if name == "a" else None

    assert route([a, b], observe=failing_a, strategy="latency")[0] == "b"
    norms = Norms.of([a, b], {})
    assert score(a, failing_a("a"), RouteRequest(), norms) < score(a, None, RouteRequest(), norms)


def test_unavailable_models_are_left_out_unless_nothing_else_is_left():
    a, b = model("a", avg_latency_ms=100), model("b", avg_latency_ms=900)

    def a_down(name: str) -> Observation | None:
        return Observation(samples=5, latency_ms=100, error_rate=1.0, available=False) \
            if name == "a" else None

    assert route([a, b], observe=a_down, strategy="latency") == ["b"]
    # Everything is down: try anyway rather than refuse.
    assert route([a], observe=a_down) == ["a"]


# -- spreading -----------------------------------------------------------------------------


def test_near_equal_models_share_the_load_deterministically_per_seed():
    twins = [model("twin-a"), model("twin-b"), model("twin-c", avg_latency_ms=5000)]
    firsts = [route(twins, seed=seed)[0] for seed in range(200)]
    assert firsts == [route(twins, seed=seed)[0] for seed in range(200)]  # same seed, same pick
    assert set(firsts) == {"twin-a", "twin-b"}  # both share first place...
    assert 50 <= firsts.count("twin-a") <= 150  # ...about evenly
    assert all(route(twins, seed=seed)[-1] == "twin-c" for seed in range(20))


def test_one_clear_winner_ignores_the_random_source():
    class Exploding(random.Random):
        def choices(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no spreading is needed with one clear winner")

    plan = plan_routed([FAST, CHEAP], RouteRequest(strategy="latency"), never_observed,
                       Exploding())
    assert plan.models[0].name == "fast"


# -- the caps: inclusive, and on both prices ------------------------------------------------


def test_a_model_over_the_price_cap_on_output_alone_is_not_a_candidate():
    cheap_in = model("cheap-in", price_in=0.001, price_out=0.02)
    under = model("under", price_in=0.005, price_out=0.005)
    names = [m.name for m in candidates([cheap_in, under],
                                        RouteRequest(max_price_per_1k_tokens=0.01))]
    assert names == ["under"]
    with pytest.raises(NoCandidate, match="max_price_per_1k_tokens"):
        candidates([cheap_in], RouteRequest(max_price_per_1k_tokens=0.01))


def test_a_model_over_the_price_cap_on_input_alone_is_not_a_candidate():
    dear_in = model("dear-in", price_in=0.02, price_out=0.001)
    with pytest.raises(NoCandidate, match="max_price_per_1k_tokens"):
        candidates([dear_in], RouteRequest(max_price_per_1k_tokens=0.01))


def test_models_exactly_at_the_caps_are_candidates():
    at_price = model("at-price", price_in=0.01, price_out=0.01, avg_latency_ms=10)
    at_latency = model("at-latency", price_in=0.001, price_out=0.001, avg_latency_ms=250)
    request = RouteRequest(max_price_per_1k_tokens=0.01, max_latency_ms=250)
    assert {m.name for m in candidates([at_price, at_latency], request)} == {
        "at-price", "at-latency"}
    just_over = model("over", price_in=0.010000001, price_out=0.001, avg_latency_ms=10)
    slower = model("slower", avg_latency_ms=250.5, price_in=0.001, price_out=0.001)
    with pytest.raises(NoCandidate, match=r"max_price_per_1k_tokens 0\.01"):
        candidates([just_over], request)
    with pytest.raises(NoCandidate, match="max_latency_ms 250"):
        candidates([slower], request)


# -- the score, pinned to the formula the module's docstring states --------------------------

DOC_WEIGHTS = {"balanced": (0.35, 0.30, 0.35), "latency": (0.90, 0.05, 0.05),
               "cost": (0.10, 0.80, 0.10), "quality": (0.05, 0.05, 0.90)}
DOC_EFFICIENCY = {"low": 0.0, "medium": 0.02, "high": 0.05}


def documented_score(m: ModelRecord, seen: Observation | None, strategy: str,
                     specialties: tuple[str, ...], fastest: float, cheapest: float,
                     best: float) -> float:
    weight = seen.samples / (seen.samples + 5.0) if seen and seen.samples else 0.0
    prior = m.avg_latency_ms or 1000.0
    latency = max((1 - weight) * prior + weight * (seen.latency_ms if seen else 0), 1.0)
    price = (m.input_price_nanos + m.output_price_nanos) / 2
    w_l, w_c, w_q = DOC_WEIGHTS[strategy]
    total = (w_l * fastest / latency + w_c * (cheapest + 1) / (price + 1)
             + w_q * (m.accuracy_score or 0.5) / best)
    total += DOC_EFFICIENCY.get(m.cost_efficiency, 0.0) * w_c / 0.3
    if specialties:
        wanted = {s.lower() for s in specialties}
        total += 0.10 * len(wanted & {s.lower() for s in m.specialties}) / len(wanted)
    if seen is not None and seen.samples:
        total *= 1 - weight * seen.error_rate
    return total


SCORED = [
    model("plain"),
    model("unknown-latency", avg_latency_ms=0, accuracy_score=0, cost_efficiency="high"),
    model("pricey", price_in=0.5, price_out=1.5, cost_efficiency="low", accuracy_score=0.97,
          specialties=("Coding", "math")),
    model("odd-efficiency", cost_efficiency="exotic", avg_latency_ms=0.2),
]
SEEN = {"plain": Observation(samples=7, latency_ms=180.0, error_rate=0.25),
        "pricey": Observation(samples=0, latency_ms=50.0, error_rate=1.0),
        "odd-efficiency": Observation(samples=3, latency_ms=0.4, error_rate=0.0)}


@pytest.mark.parametrize("strategy", sorted(DOC_WEIGHTS))
@pytest.mark.parametrize("specialties", [(), ("coding", "poetry")])
def test_scores_follow_the_documented_formula(strategy: str, specialties: tuple[str, ...]):
    norms = Norms.of(SCORED, SEEN)
    request = RouteRequest(strategy=strategy, specialties=specialties)
    for m in SCORED:
        expected = documented_score(m, SEEN.get(m.name), strategy, specialties,
                                    norms.fastest, norms.cheapest, norms.best_quality)
        assert score(m, SEEN.get(m.name), request, norms) == pytest.approx(expected, rel=1e-12)
    assert norms.fastest == pytest.approx(1.0)  # observed 0.4 ms blended, floored at 1 ms
    assert norms.best_quality == 0.97


def test_an_observation_is_available_unless_it_says_otherwise():
    assert Observation(samples=1, latency_ms=1.0, error_rate=0.0).available


class Picks:
    """A random source that records its draw and takes the last of the choices."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], list[float]]] = []

    def choices(self, population: list[ModelRecord], weights: list[float]) -> list[ModelRecord]:
        self.calls.append(([m.name for m in population], list(weights)))
        return [population[-1]]


@pytest.mark.parametrize(("second", "shared"), [(0.95, True), (0.9499, False), (1.0, True)])
def test_the_first_place_is_shared_within_five_percent_of_the_best(second: float,
                                                                   shared: bool):
    a, b, c = model("a"), model("b"), model("c")
    picks = Picks()
    ranked = _spread([a, b, c], {"a": 1.0, "b": second, "c": 0.5}, picks)  # type: ignore[arg-type]
    if shared:
        assert [m.name for m in ranked] == ["b", "a", "c"]
        assert picks.calls == [(["a", "b"], [1.0, second])]
    else:
        assert ranked == [a, b, c] and picks.calls == []


def test_observed_quality_starts_at_the_claim_and_follows_the_ratings():
    liar = model("liar", accuracy_score=0.99)
    assert quality_of(liar, NO_RATINGS) == 0.99
    assert quality_of(liar, Ratings(1, 0.1)) == pytest.approx(
        (FEEDBACK_PRIOR_WEIGHT * 0.99 + 0.1) / (FEEDBACK_PRIOR_WEIGHT + 1))
    many = quality_of(liar, Ratings(1000, 100.0))
    assert 0.1 < many < 0.11  # the claim fades as ratings accumulate


@pytest.mark.parametrize(("ratings", "winner"), [(0, "liar"), (2, "honest"), (3, "honest")])
def test_quality_routing_follows_observed_quality(ratings: int, winner: str):
    """Two ratings of 0.1 take a claim of 0.99 below an honest, unrated 0.8."""
    pool = [model("liar", accuracy_score=0.99), model("honest", accuracy_score=0.8)]
    rated = {"liar": Ratings(ratings, 0.1 * ratings)}
    plan = plan_routed(pool, RouteRequest(strategy="quality"), lambda _name: None,
                       random.Random(0), lambda name: rated.get(name, NO_RATINGS))
    assert plan.models[0].name == winner
