"""Login throttling decisions: which attempts are refused after earlier failures."""

from __future__ import annotations

import pytest

from pdal_hub.throttle import Lock, LoginThrottle, ThrottleLimits

LIMITS = ThrottleLimits(
    per_pair=3,
    per_address=6,
    per_account=9,
    window=100.0,
    remember_success=1000.0,
    max_tracked=1000,
)


def throttle_after(
    failures: list[tuple[str, str]],
    limits: ThrottleLimits = LIMITS,
    successes: list[tuple[str, str]] = (),
) -> LoginThrottle:
    throttle = LoginThrottle(limits)
    for account, address in successes:
        throttle.succeeded(account, address, 0.0, 0.0)
    for i, (account, address) in enumerate(failures):
        throttle.attempt(account, address, 1.0 + i * 0.01)
    return throttle


@pytest.mark.parametrize(
    "failures, successes, attempt, expected_scope",
    [
        # a few typos lock nothing
        ([("alice", "nat")] * 2, [], ("alice", "nat"), None),
        # guessing one password from one place locks that pair only
        ([("alice", "nat")] * 3, [], ("alice", "nat"), "pair"),
        ([("alice", "nat")] * 3, [], ("bob", "nat"), None),
        ([("alice", "nat")] * 3, [], ("alice", "home"), None),
        # spraying many accounts from one address pauses the address...
        ([(f"u{i}", "nat") for i in range(6)], [], ("carol", "nat"), "address"),
        # ...but not for an account that logged in from there before (class behind NAT)
        ([(f"u{i}", "nat") for i in range(6)], [("carol", "nat")], ("carol", "nat"), None),
        ([(f"u{i}", "nat") for i in range(6)], [], ("carol", "home"), None),
        # many addresses against one account pause it, except where it logged in before
        ([("alice", f"a{i}") for i in range(9)], [], ("alice", "new"), "account"),
        ([("alice", f"a{i}") for i in range(9)], [("alice", "home")], ("alice", "home"), None),
        # a known pair is still locked by its own failures
        ([("alice", "nat")] * 3, [("alice", "nat")], ("alice", "nat"), "pair"),
    ],
)
def test_refusal(failures, successes, attempt, expected_scope):
    lock = throttle_after(failures, successes=successes).refusal(*attempt, now=2.0)
    assert (lock.scope if lock else None) == expected_scope


def test_one_attacker_cannot_lock_an_account_from_one_address():
    throttle = LoginThrottle(LIMITS)
    now = 1.0
    for _ in range(1000):
        throttle.attempt("alice", "attacker", now)
        now += 0.01
    assert throttle.refusal("alice", "attacker", now).scope == "pair"
    assert throttle.refusal("alice", "elsewhere", now) is None
    assert throttle.refusal("bob", "attacker", now) is None


def test_lock_ends_one_window_after_the_failures():
    throttle = throttle_after([("alice", "nat")] * 3)
    lock = throttle.refusal("alice", "nat", 2.0)
    assert lock.retry_after == pytest.approx(99.0)
    assert throttle.refusal("alice", "nat", 100.99) is not None
    assert throttle.refusal("alice", "nat", 101.01) is None


def test_success_forgets_the_pairs_failures():
    throttle = throttle_after([("alice", "nat")] * 2)
    throttle.succeeded("alice", "nat", 2.0, 2.0)
    throttle.attempt("alice", "nat", 3.0)
    throttle.attempt("alice", "nat", 3.0)
    assert throttle.refusal("alice", "nat", 4.0) is None


def test_remembered_success_expires():
    throttle = throttle_after([(f"u{i}", "nat") for i in range(6)], successes=[("carol", "nat")])
    assert throttle.refusal("carol", "nat", 2.0) is None
    throttle.attempt("x", "nat", 999.0)
    throttle.attempt("y", "nat", 999.0)
    for i in range(6):
        throttle.attempt(f"v{i}", "nat", 1000.5)
    assert throttle.refusal("carol", "nat", 1000.6).scope == "address"


@pytest.mark.parametrize(
    "field, failures, attempt",
    [
        ("per_pair", [("alice", "nat")] * 3, ("alice", "nat")),
        ("per_address", [(f"u{i}", "nat") for i in range(6)], ("zed", "nat")),
        ("per_account", [("alice", f"a{i}") for i in range(9)], ("alice", "new")),
    ],
)
def test_zero_turns_a_limit_off(field, failures, attempt):
    assert throttle_after(failures).refusal(*attempt, now=2.0) is not None
    limits = ThrottleLimits(**{**LIMITS.__dict__, field: 0})
    assert throttle_after(failures, limits).refusal(*attempt, now=2.0) is None


def test_memory_is_bounded():
    limits = ThrottleLimits(**{**LIMITS.__dict__, "max_tracked": 50})
    throttle = LoginThrottle(limits)
    for i in range(10000):
        throttle.attempt(f"user{i}", f"10.0.{i // 256}.{i % 256}", 1.0)
        throttle.succeeded(f"user{i}", "nat", 1.0, 1.0)
    assert len(throttle._pairs._times) <= 50
    assert len(throttle._addresses._times) <= 50
    assert len(throttle._accounts._times) <= 50
    assert len(throttle._successes) <= 50


@pytest.mark.parametrize(
    "seconds, shown", [(1, "1 minute."), (60, "1 minute."), (61, "2 minutes"), (600, "10 minutes")]
)
def test_lock_message_says_how_long(seconds, shown):
    message = Lock("pair", seconds).message()
    assert shown in message
    assert "Too many failed logins" in message


def test_parallel_attempts_cannot_slip_past_the_limit():
    throttle = LoginThrottle(LIMITS)
    # attempts still being checked already count: the fourth one is refused
    assert [throttle.attempt("alice", "nat", 1.0) for _ in range(4)][-1].scope == "pair"


def test_successes_are_not_counted_as_failures():
    throttle = LoginThrottle(LIMITS)
    for i in range(20):
        assert throttle.attempt(f"student{i}", "nat", 1.0 + i) is None
        throttle.succeeded(f"student{i}", "nat", 1.0 + i, 1.5 + i)
    assert throttle.refusal("newcomer", "nat", 30.0) is None
    assert not throttle._addresses._times
