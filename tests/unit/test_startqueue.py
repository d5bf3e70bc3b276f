"""Bounded server starts: order, limits, leaving the line, and what students read."""

from __future__ import annotations

import asyncio

import pytest

from pdal_hub.startqueue import StartSlots, default_start_limit, queue_message


@pytest.mark.parametrize("cpus, expected", [(None, 1), (0, 1), (1, 1), (2, 2), (16, 16)])
def test_default_start_limit(cpus, expected):
    assert default_start_limit(cpus) == expected


@pytest.mark.parametrize(
    "place, expected",
    [
        (0, "Starting your server..."),
        (1, "Many servers are starting: yours is next, one moment..."),
        (2, "Many servers are starting: 1 ahead of yours, one moment..."),
        (6, "Many servers are starting: 5 ahead of yours, one moment..."),
    ],
)
def test_queue_message(place, expected):
    assert queue_message(place) == expected


async def test_at_most_limit_active_and_fifo_order():
    slots = StartSlots(2)
    tickets = [slots.enter() for _ in range(5)]
    assert [t.active for t in tickets] == [True, True, False, False, False]
    assert [t.place for t in tickets] == [0, 0, 1, 2, 3]
    tickets[1].leave()
    assert [t.active for t in tickets[2:]] == [True, False, False]
    assert [t.place for t in tickets[3:]] == [1, 2]
    await asyncio.wait_for(tickets[2].wait_turn(), 1)
    assert tickets[3].changed.is_set() and tickets[4].changed.is_set()


async def test_leaving_the_line_before_the_turn_frees_nothing_and_moves_others_up():
    slots = StartSlots(1)
    first, second, third = slots.enter(), slots.enter(), slots.enter()
    second.leave()
    assert slots.active == 1 and third.place == 1 and not third.active
    first.leave()
    assert third.active and slots.active == 1
    third.leave()
    third.leave()
    assert slots.active == 0 and not slots.waiting


@pytest.mark.parametrize("limit", [0, 3])
async def test_no_waiting_within_the_limit(limit):
    slots = StartSlots(limit)
    tickets = [slots.enter() for _ in range(3)]
    assert all(t.active for t in tickets)
    for t in tickets:
        await asyncio.wait_for(t.wait_turn(), 1)


async def test_waiters_are_admitted_in_arrival_order():
    slots = StartSlots(1)
    holder = slots.enter()
    admitted = []

    async def wait(i, ticket):
        await ticket.wait_turn()
        admitted.append(i)
        ticket.leave()

    waiters = [asyncio.create_task(wait(i, slots.enter())) for i in range(4)]
    await asyncio.sleep(0)
    holder.leave()
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    assert admitted == [0, 1, 2, 3]
