"""FastStartMixin: its options, and that starts wait in line while their page says so."""

from __future__ import annotations

import asyncio
import os
import sysconfig
from types import SimpleNamespace

import pytest
from traitlets import Integer, List
from traitlets.config import LoggingConfigurable

from pdal_hub.faststart import FastStartMixin
from pdal_hub.spawner import PdalSpawner


class GatedStart(LoggingConfigurable):
    """Stands in for LocalProcessSpawner: start() returns when the test opens its gate."""

    start_timeout = Integer(60)
    http_timeout = Integer(30)
    cmd = List(["jupyterhub-singleuser"])

    def __init__(self, name: str = "alice", **kwargs):
        super().__init__(**kwargs)
        self.gate = asyncio.Event()
        self.user = SimpleNamespace(name=name)

    async def start(self):
        await self.gate.wait()
        return "http://127.0.0.1:1"


class Probe(FastStartMixin, GatedStart):
    async def wait_until_answering(self, url):
        return None


@pytest.fixture(autouse=True)
def fresh_slots(monkeypatch):
    monkeypatch.setattr(FastStartMixin, "_slots", {})


def test_defaults():
    spawner = Probe()
    assert spawner.cmd == [os.path.join(sysconfig.get_path("scripts"), "pdal-hub-singleuser")]
    assert spawner.start_timeout == 300
    assert spawner.concurrent_starts >= 1
    assert spawner.ready_check_interval == 0.1


def test_pdal_spawner_has_fast_start():
    assert issubclass(PdalSpawner, FastStartMixin)
    assert PdalSpawner().cmd == [os.path.join(sysconfig.get_path("scripts"), "pdal-hub-singleuser")]


@pytest.mark.parametrize("value, ok", [(0, True), (1, True), (8, True), (-1, False)])
def test_concurrent_starts_validation(value, ok):
    if ok:
        assert Probe(concurrent_starts=value).concurrent_starts == value
    else:
        with pytest.raises(Exception, match="FastStartMixin.concurrent_starts"):
            Probe(concurrent_starts=value)


async def next_message(progress) -> str:
    return (await asyncio.wait_for(progress.__anext__(), 2))["message"]


async def test_second_start_waits_and_its_progress_counts_down():
    first, second = Probe(concurrent_starts=1), Probe(concurrent_starts=1, name="bob")
    first_start = asyncio.create_task(first.start())
    await asyncio.sleep(0)
    second_start = asyncio.create_task(second.start())
    await asyncio.sleep(0)
    progress = second.progress()
    assert await next_message(progress) == "Many servers are starting: yours is next, one moment..."
    second.gate.set()
    await asyncio.sleep(0.05)
    assert not second_start.done(), "second start must wait for the first"
    first.gate.set()
    assert await asyncio.wait_for(first_start, 2) == "http://127.0.0.1:1"
    assert await next_message(progress) == "Starting your server..."
    assert await asyncio.wait_for(second_start, 2) == "http://127.0.0.1:1"
    assert not first.start_slots().active


async def test_a_failed_start_gives_its_slot_back():
    class Failing(Probe):
        async def wait_until_answering(self, url):
            raise RuntimeError("server died")

    failing = Failing(concurrent_starts=1)
    failing.gate.set()
    with pytest.raises(RuntimeError):
        await failing.start()
    assert failing.start_slots().active == 0


async def test_progress_asked_before_start_waits_for_the_place_in_line():
    first, second = Probe(concurrent_starts=1), Probe(concurrent_starts=1, name="bob")
    first_start = asyncio.create_task(first.start())
    second._spawn_pending = True
    progress = second.progress()
    early = asyncio.create_task(next_message(progress))
    await asyncio.sleep(0.2)
    assert not early.done(), "progress must wait while start() has not begun"
    second_start = asyncio.create_task(second.start())
    assert await early == "Many servers are starting: yours is next, one moment..."
    first.gate.set()
    second.gate.set()
    await asyncio.wait_for(asyncio.gather(first_start, second_start), 2)
    assert second._start_ticket is None
