"""Bounded server starts: at most N at once, the rest wait their turn in arrival order.

Twelve servers starting together on two cores each take as long as all twelve;
started a few at a time, the first students work after seconds and the last no
later than before. The spawner shows each waiting student their place in line.
"""

from __future__ import annotations

import asyncio
from collections import deque


def default_start_limit(cpu_count: int | None) -> int:
    """How many servers may start at once by default: one per CPU core (at least 1)."""
    return max(1, cpu_count or 1)


def queue_message(place: int) -> str:
    """What a student reads on the spawn-pending page at `place` in line (0: starting)."""
    if place <= 0:
        return "Starting your server..."
    if place == 1:
        return "Many servers are starting: yours is next, one moment..."
    return f"Many servers are starting: {place - 1} ahead of yours, one moment..."


class Ticket:
    """One server's place in a `StartSlots` line."""

    def __init__(self, slots: StartSlots) -> None:
        self._slots = slots
        self._turn = asyncio.get_running_loop().create_future()
        self.changed = asyncio.Event()
        self.active = False
        self.done = False

    @property
    def place(self) -> int:
        """1 for the next server to start, 2 after it, ...; 0 once it may start."""
        return self._slots.place_of(self)

    async def wait_turn(self) -> None:
        await asyncio.shield(self._turn)

    def _admit(self) -> None:
        self.active = True
        self.changed.set()
        if not self._turn.done():
            self._turn.set_result(None)

    def leave(self) -> None:
        """Give the slot (or the place in line) back; safe to call twice."""
        if not self.done:
            self.done = True
            self._slots._leave(self)


class StartSlots:
    """At most `limit` tickets active at once; 0 means no limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.waiting: deque[Ticket] = deque()

    def enter(self) -> Ticket:
        """A ticket for a server that wants to start; active at once if a slot is free."""
        ticket = Ticket(self)
        if not self.limit or self.active < self.limit:
            self.active += 1
            ticket._admit()
        else:
            self.waiting.append(ticket)
        return ticket

    def place_of(self, ticket: Ticket) -> int:
        if ticket.active or ticket.done:
            return 0
        return self.waiting.index(ticket) + 1

    def _leave(self, ticket: Ticket) -> None:
        if ticket.active:
            self.active -= 1
        else:
            self.waiting.remove(ticket)
        while self.waiting and (not self.limit or self.active < self.limit):
            self.active += 1
            self.waiting.popleft()._admit()
        for waiting in self.waiting:
            waiting.changed.set()
        ticket.changed.set()
