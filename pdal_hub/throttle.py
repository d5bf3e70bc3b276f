"""Which login attempts to refuse without asking PAM, after earlier failures.

Pure bookkeeping, no I/O: before a password is checked the authenticator calls
`attempt()` with the account name and the client's address, which refuses it or
counts it as a failure; `succeeded()` takes a successful attempt back out.
Three limits apply, each over a sliding window:

- an (account, address) pair: a few failures lock that pair only, so guessing
  one student's password from one place stops quickly while the rest of a
  class behind the same address keeps logging in;
- an address, across all accounts (password spraying): a higher limit, and a
  pair that logged in successfully from that address recently stays allowed,
  so a class behind one NAT address is not locked out by one attacker;
- an account, across all addresses: a much higher limit, so one attacker who
  knows a student's username cannot lock that student out on their own.

Refused attempts are not counted, so a lock ends one window after the
failures that caused it, however long an attacker keeps trying.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleLimits:
    """How many failures within `window` seconds lock a pair, an address, an account."""

    per_pair: int = 5
    per_address: int = 50
    per_account: int = 100
    window: float = 600.0
    remember_success: float = 7 * 24 * 3600.0
    max_tracked: int = 20000


@dataclass(frozen=True)
class Lock:
    """An attempt refused because of earlier failures."""

    scope: str  # "pair", "address" or "account"
    retry_after: float  # seconds until the lock ends

    def message(self) -> str:
        """What the person at the login form is told (the same for every account)."""
        minutes = max(1, int(self.retry_after + 59) // 60)
        return (
            "Too many failed logins. For your safety, logging in is paused for about "
            f"{minutes} minute{'s' if minutes != 1 else ''}. Try again later, or ask "
            "your instructor if you forgot your password."
        )


class _Failures:
    """Failure times per key within a window, for at most `max_keys` keys."""

    def __init__(self, limit: int, window: float, max_keys: int) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._times: OrderedDict[object, deque[float]] = OrderedDict()

    def _recent(self, key: object, now: float) -> deque[float] | None:
        times = self._times.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._times[key]
            return None
        return times

    def add(self, key: object, now: float) -> None:
        times = self._recent(key, now)
        if times is None:
            times = self._times[key] = deque(maxlen=self.limit)
        times.append(now)
        self._times.move_to_end(key)
        while len(self._times) > self.max_keys:
            self._times.popitem(last=False)

    def retry_after(self, key: object, now: float) -> float | None:
        """Seconds until `key` may try again, or None if it is not locked."""
        if self.limit <= 0:
            return None
        times = self._recent(key, now)
        if times is None or len(times) < self.limit:
            return None
        return times[-self.limit] + self.window - now

    def clear(self, key: object) -> None:
        self._times.pop(key, None)

    def discard(self, key: object, when: float) -> None:
        times = self._times.get(key)
        if times is not None and when in times:
            times.remove(when)


class LoginThrottle:
    """Failure counts and recent successes, in memory (a hub restart forgets them)."""

    def __init__(self, limits: ThrottleLimits) -> None:
        self.limits = limits
        self._pairs = _Failures(limits.per_pair, limits.window, limits.max_tracked)
        self._addresses = _Failures(limits.per_address, limits.window, limits.max_tracked)
        self._accounts = _Failures(limits.per_account, limits.window, limits.max_tracked)
        self._successes: OrderedDict[tuple[str, str], float] = OrderedDict()

    def known_pair(self, account: str, address: str, now: float) -> bool:
        """Whether `account` logged in successfully from `address` recently."""
        when = self._successes.get((account, address))
        return when is not None and now - when < self.limits.remember_success

    def refusal(self, account: str, address: str, now: float) -> Lock | None:
        """The lock that refuses this attempt, or None to let PAM check it."""
        wait = self._pairs.retry_after((account, address), now)
        if wait is not None:
            return Lock("pair", wait)
        if self.known_pair(account, address, now):
            return None
        wait = self._addresses.retry_after(address, now)
        if wait is not None:
            return Lock("address", wait)
        wait = self._accounts.retry_after(account, now)
        if wait is not None:
            return Lock("account", wait)
        return None

    def attempt(self, account: str, address: str, now: float) -> Lock | None:
        """Refuse the attempt (a Lock), or count it as a failure until it succeeds.

        Counting before the password is checked means parallel attempts cannot
        slip past a limit while earlier ones are still being checked.
        """
        lock = self.refusal(account, address, now)
        if lock is None:
            self._pairs.add((account, address), now)
            self._addresses.add(address, now)
            self._accounts.add(account, now)
        return lock

    def succeeded(self, account: str, address: str, attempted_at: float, now: float) -> None:
        """Uncount the attempt made at `attempted_at`, forget the pair's failures and
        remember the pair as known-good."""
        self._pairs.clear((account, address))
        self._addresses.discard(address, attempted_at)
        self._accounts.discard(account, attempted_at)
        self._successes[(account, address)] = now
        self._successes.move_to_end((account, address))
        while len(self._successes) > self.limits.max_tracked:
            self._successes.popitem(last=False)
