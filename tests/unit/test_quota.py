"""LocalQuota: token buckets and budget reservations, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ai1net.server.errors import BudgetExceeded, RateLimited, Unavailable
from ai1net.server.keys import Principal
from ai1net.server.quota import (
    Admission,
    KeyRateLimited,
    LocalQuota,
    build_quota,
    spent_by_key,
)
from ai1net.server.storage import Database
from ai1net.server.usage import Ledger, UsageEvent

CALL = 1_000_000  # one call's worst case, in nano-dollars


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


class Spent:
    """A load_spent that counts its calls."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self, key_id: str) -> int:
        self.calls += 1
        await asyncio.sleep(0)  # a real one awaits the database
        return self.value


def principal(key_id: str = "key_a", *, rpm: int = 0, tpm: int = 0,
              budget: int | None = None) -> Principal:
    return Principal(id=key_id, name=key_id, role="consumer", key_hash="h", prefix="p",
                     requests_per_minute=rpm, tokens_per_minute=tpm, budget_nanos=budget,
                     created_at=datetime.now(UTC))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spent() -> Spent:
    return Spent()


@pytest.fixture
def quota(clock: Clock, spent: Spent) -> LocalQuota:
    return LocalQuota(load_spent=spent, clock=clock)


async def admit(quota: LocalQuota, key: Principal, tokens: int = 0, nanos: int = 0) -> Admission:
    return await quota.admit(key, reserve_tokens=tokens, reserve_nanos=nanos)


async def test_the_request_after_the_limit_is_refused_with_retry_after(quota, clock):
    key = principal(rpm=5)
    remaining = [(await admit(quota, key)).limits.requests.remaining for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key)
    assert isinstance(refused.value, RateLimited)
    assert refused.value.retry_after_s == 12  # one request comes back every 60/5 s
    assert "5 requests per minute" in refused.value.message
    assert refused.value.metadata() == {
        "x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "60"}
    clock.advance(11.9)
    with pytest.raises(KeyRateLimited):
        await admit(quota, key)
    clock.advance(0.1)
    assert (await admit(quota, key)).limits.requests.remaining == 0


async def test_another_key_is_unaffected(quota):
    for _ in range(3):
        await admit(quota, principal("key_a", rpm=3))
    with pytest.raises(RateLimited):
        await admit(quota, principal("key_a", rpm=3))
    assert (await admit(quota, principal("key_b", rpm=3))).limits.requests.remaining == 2


async def test_headers_on_an_admitted_call(quota, clock):
    key = principal(rpm=60, tpm=1000)
    await admit(quota, key, tokens=250)
    clock.advance(0.5)
    assert (await admit(quota, key, tokens=100)).headers() == {
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "58",
        "x-ratelimit-reset-requests": "2",
        "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "658",
        "x-ratelimit-reset-tokens": "21"}


async def test_unlimited_key_takes_nothing(quota, spent):
    admission = await admit(quota, principal(), tokens=10**9, nanos=10**12)
    assert admission.headers() == {}
    assert (admission.tokens, admission.nanos) == (0, 0)
    await quota.settle(admission, tokens=5, cost_nanos=7)
    assert spent.calls == 0


async def test_tokens_limit_and_settling_gives_back_what_was_not_used(quota, clock):
    key = principal(tpm=100)
    first = await admit(quota, key, tokens=60)
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key, tokens=60)
    assert refused.value.retry_after_s == 12  # 20 tokens short at 100/60 a second
    assert "100 tokens per minute" in refused.value.message
    await quota.settle(first, tokens=10, cost_nanos=0)  # the answer was short
    assert (await admit(quota, key, tokens=60)).limits.tokens.remaining == 30
    clock.advance(60)
    assert (await admit(quota, key, tokens=1)).limits.tokens.remaining == 99


async def test_using_more_tokens_than_reserved_takes_the_difference(quota):
    key = principal(tpm=100)
    admission = await admit(quota, key, tokens=10)
    await quota.settle(admission, tokens=80, cost_nanos=0)
    with pytest.raises(KeyRateLimited):
        await admit(quota, key, tokens=30)


async def test_a_call_bigger_than_the_token_limit_passes_once_the_bucket_is_full(quota, clock):
    key = principal(tpm=100)
    big = await admit(quota, key, tokens=250)
    assert big.limits.tokens.remaining == 0
    assert big.limits.tokens.reset_s == 150  # in debt: 250 tokens at 100 a minute
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key, tokens=250)
    assert refused.value.retry_after_s == 150
    clock.advance(150)
    await admit(quota, key, tokens=250)


async def test_sixty_concurrent_calls_against_ten_calls_of_budget(quota, spent):
    key = principal(budget=10 * CALL)
    results = await asyncio.gather(*(admit(quota, key, nanos=CALL) for _ in range(60)),
                                   return_exceptions=True)
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == 10
    assert all(isinstance(r, BudgetExceeded) for r in results if r not in admitted)
    assert spent.calls == 1  # one database read, however many callers waited for it
    for admission in admitted:
        await quota.settle(admission, tokens=0, cost_nanos=CALL)
    assert await quota.spent_nanos(key.id) == 10 * CALL
    with pytest.raises(BudgetExceeded, match="exhausted"):
        await admit(quota, key, nanos=1)


async def test_settling_releases_the_unused_part_of_a_reservation(quota):
    key = principal(budget=10 * CALL)
    admitted = [await admit(quota, key, nanos=CALL) for _ in range(10)]
    with pytest.raises(BudgetExceeded):
        await admit(quota, key, nanos=CALL)
    for admission in admitted:
        await quota.settle(admission, tokens=0, cost_nanos=CALL // 2)
    assert [await admit(quota, key, nanos=CALL) for _ in range(5)]
    with pytest.raises(BudgetExceeded):
        await admit(quota, key, nanos=CALL)


async def test_a_failed_call_releases_its_reservation(quota):
    key = principal(budget=CALL)
    admission = await admit(quota, key, nanos=CALL)
    with pytest.raises(BudgetExceeded):
        await admit(quota, key, nanos=CALL)
    await quota.settle(admission, tokens=0, cost_nanos=0)
    await quota.settle(admission, tokens=0, cost_nanos=CALL)  # a second settle is ignored
    assert await quota.spent_nanos(key.id) == 0
    await admit(quota, key, nanos=CALL)


async def test_a_cancelled_call_releases_its_reservation_from_finally(quota):
    key = principal(budget=CALL)
    started = asyncio.Event()

    async def call() -> None:
        admission = await admit(quota, key, nanos=CALL)
        try:
            started.set()
            await asyncio.Event().wait()  # the provider never answers
        finally:
            await quota.settle(admission, tokens=0, cost_nanos=CALL // 4)

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await quota.spent_nanos(key.id) == CALL // 4
    await admit(quota, key, nanos=CALL - CALL // 4)


async def test_overspend_is_what_a_call_cost_beyond_its_reservation(quota):
    key = principal(budget=2 * CALL)
    first, second = await admit(quota, key, nanos=CALL), await admit(quota, key, nanos=CALL)
    await quota.settle(first, tokens=0, cost_nanos=CALL)
    await quota.settle(second, tokens=0, cost_nanos=CALL + 5)  # more tokens than max_tokens
    assert await quota.spent_nanos(key.id) == 2 * CALL + 5
    with pytest.raises(BudgetExceeded):
        await admit(quota, key)  # even a free call: the budget is gone


async def test_spent_starts_from_the_database(clock):
    quota = LocalQuota(load_spent=Spent(9 * CALL), clock=clock)
    key = principal(budget=10 * CALL)
    await admit(quota, key, nanos=CALL)
    with pytest.raises(BudgetExceeded):
        await admit(quota, key, nanos=CALL)


async def test_forget_rebuilds_the_budget_from_the_database(quota, spent):
    key = principal(budget=10 * CALL)
    await quota.settle(await admit(quota, key, nanos=CALL), tokens=0, cost_nanos=CALL)
    spent.value = 3 * CALL  # what the ledger holds by now
    await quota.forget(key.id)
    assert await quota.spent_nanos(key.id) == 3 * CALL
    await admit(quota, replace(key, budget_nanos=4 * CALL), nanos=CALL)
    with pytest.raises(BudgetExceeded):
        await admit(quota, replace(key, budget_nanos=4 * CALL), nanos=1)


async def test_a_database_failure_is_unavailable(clock):
    async def broken(key_id: str) -> int:
        raise OSError("database down")

    quota = LocalQuota(load_spent=broken, clock=clock)
    with pytest.raises(Unavailable):
        await admit(quota, principal(budget=CALL), nanos=1)
    await admit(quota, principal(rpm=1))  # keys without a budget never need it


async def test_negative_reservations_are_a_programming_error(quota):
    with pytest.raises(ValueError, match="≥ 0"):
        await admit(quota, principal(), tokens=-1)


async def test_build_quota_without_redis_is_local(spent):
    quota = build_quota(None, load_spent=spent)
    assert isinstance(quota, LocalQuota)
    await quota.close()


async def test_spent_by_key_sums_the_ledger(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'quota.db'}")
    await db.migrate()
    ledger = Ledger(db=db)
    for n, (key_id, cost) in enumerate([("key_a", 3), ("key_b", 5), ("key_a", 2**40)]):
        ledger.record(UsageEvent(id=f"evt_{n}", ts_ms=n, key_id=key_id, model="m",
                                 model_owner="key_p", input_tokens=1, output_tokens=1,
                                 estimated=False, cost_nanos=cost, latency_ms=1, ttft_ms=0,
                                 outcome="ok"))
    await ledger.flush()
    try:
        assert await spent_by_key(db, "key_a") == 3 + 2**40
        assert await spent_by_key(db, "key_b") == 5
        assert await spent_by_key(db, "key_none") == 0
    finally:
        await db.close()


async def test_a_wait_under_a_second_still_says_retry_after_one(quota, clock):
    """Retry-After is whole seconds (CONTRACT §2.4): a wait of a few ms is 1, never 0."""
    key = principal(rpm=60)  # one request a second
    for _ in range(60):
        await admit(quota, key)
    clock.advance(0.999)
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key)
    assert refused.value.retry_after_s == 1
    clock.advance(0.001)
    await admit(quota, key)


async def test_settling_a_call_that_reserved_nothing_leaves_the_others_holds(quota, spent):
    key = principal(budget=3 * CALL)
    held = await admit(quota, key, nanos=2 * CALL)
    free = await admit(quota, key, nanos=0)
    await quota.settle(free, tokens=0, cost_nanos=0)
    # 2 calls' worth still held: a reservation of more than 1 more does not fit.
    with pytest.raises(BudgetExceeded):
        await admit(quota, key, nanos=CALL + 1)
    await admit(quota, key, nanos=CALL)
    await quota.settle(held, tokens=0, cost_nanos=0)
    assert await quota.spent_nanos(key.id) == 0


# -- what the mutation run found untested (docs/MUTATION.md) --------------------------------


def test_an_admission_by_default_took_no_tokens_and_holds_no_budget():
    admission = Admission(key_id="key_a", tokens=0, nanos=0)
    assert (admission.tokens_per_minute, admission.budgeted, admission.hold) == (0, False, "")


@pytest.mark.parametrize(("rpm", "tpm", "first", "second", "says"), [
    # Tokens run out while one request is left: only the tokens are named.
    (2, 10, 10, 5, "rate limit exceeded: 10 tokens per minute"),
    # Requests run out while exactly enough tokens are left: only the requests are named.
    (1, 10, 0, 10, "rate limit exceeded: 1 requests per minute"),
])
async def test_the_refusal_names_only_the_limit_that_was_hit(quota, rpm, tpm, first, second,
                                                             says):
    key = principal(rpm=rpm, tpm=tpm)
    await admit(quota, key, tokens=first)
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key, tokens=second)
    assert refused.value.message == says


async def test_tokens_used_beyond_the_reservation_after_a_full_refill(quota, clock):
    """Settling counts time first: the bucket refilled to the top, then pays the extra."""
    key = principal(tpm=10)
    admission = await admit(quota, key, tokens=0)
    clock.advance(60)
    await quota.settle(admission, tokens=5, cost_nanos=0)
    assert (await admit(quota, key, tokens=0)).limits.tokens.remaining == 5


async def test_settling_a_call_made_without_a_token_limit_leaves_the_bucket(quota):
    limited = principal(tpm=10)
    await admit(quota, limited, tokens=4)
    unlimited = await admit(quota, replace(limited, tokens_per_minute=0), tokens=3)
    await quota.settle(unlimited, tokens=3, cost_nanos=0)
    assert (await admit(quota, limited, tokens=0)).limits.tokens.remaining == 6


async def test_a_call_admitted_without_a_budget_is_not_charged_to_one_set_later(quota):
    key = principal()
    before = await admit(quota, key, nanos=CALL)
    budgeted = replace(key, budget_nanos=10 * CALL)
    await quota.settle(await admit(quota, budgeted, nanos=CALL), tokens=0, cost_nanos=CALL)
    await quota.settle(before, tokens=0, cost_nanos=CALL)  # the ledger has it; not here
    assert await quota.spent_nanos(key.id) == CALL


async def test_closing_cancels_a_budget_still_loading(clock):
    started = asyncio.Event()

    async def never(_key_id: str) -> int:
        started.set()
        await asyncio.Event().wait()
        return 0

    quota = LocalQuota(load_spent=never, clock=clock)
    waiting = asyncio.create_task(admit(quota, principal(budget=CALL), nanos=1))
    await started.wait()
    await quota.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_gateway_error_while_loading_the_budget_is_passed_on_as_it_is(clock):
    failure = Unavailable("the ledger is being rebuilt")

    async def failing(_key_id: str) -> int:
        raise failure

    quota = LocalQuota(load_spent=failing, clock=clock)
    with pytest.raises(Unavailable) as raised:
        await admit(quota, principal(budget=CALL), nanos=1)
    assert raised.value is failure


async def test_a_bucket_gains_nothing_while_no_time_passes(quota, clock):
    key = principal(rpm=60)  # one request a second
    for _ in range(60):
        await admit(quota, key)
    clock.advance(0.999999)  # one microsecond short of the next request
    for _ in range(2):  # asking again at the same instant does not bring it closer
        with pytest.raises(KeyRateLimited):
            await admit(quota, key)
    clock.advance(0.000001)
    await admit(quota, key)
