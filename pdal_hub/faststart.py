"""A faster start for each student's server, and an orderly one for a whole class.

- Servers start a few at a time (`concurrent_starts`); the others wait in line
  and their spawn-pending page says how many are ahead.
- `start()` returns only once the new server answers, checked every
  `ready_check_interval` seconds, so the hub's own check (which backs off up to
  5 s between tries) finds it up at its first try.
- The server runs as `pdal-hub-singleuser` (pdal_hub.singleuser), which skips a start-up
  cost no student uses (see that module).
"""

from __future__ import annotations

import asyncio
import os
import sysconfig
import time
from typing import ClassVar

from jupyterhub.utils import url_path_join
from tornado.httpclient import AsyncHTTPClient
from traitlets import Float, Integer, default, validate
from traitlets.config import Configurable

from .startqueue import StartSlots, default_start_limit, queue_message


class FastStartMixin(Configurable):
    """Bounded, queued server starts that the hub notices at once."""

    concurrent_starts = Integer(
        config=True,
        help="""
        How many servers may be starting at the same moment; more wait in line and
        their page shows how many are ahead. Default: one per CPU core, which gets
        the first students of a class working soonest without delaying the last.
        0 means no limit (every request starts at once, as in plain JupyterHub).
        """,
    )

    ready_check_interval = Float(
        0.1,
        config=True,
        help="""
        Seconds between checks whether a just-started server answers. The start
        (and its slot in line) ends as soon as it does, so the hub sends the student
        on without its own back-off of up to 5 s.
        """,
    )

    _slots: ClassVar[dict[int, StartSlots]] = {}

    @default("concurrent_starts")
    def _concurrent_starts_default(self) -> int:
        return default_start_limit(os.cpu_count())

    @validate("concurrent_starts")
    def _check_concurrent_starts(self, proposal) -> int:
        if proposal["value"] < 0:
            raise ValueError(
                "FastStartMixin.concurrent_starts must be 0 (no limit) or a positive "
                f"number of servers, not {proposal['value']}"
            )
        return proposal["value"]

    @default("start_timeout")
    def _start_timeout_default(self) -> int:
        # Waiting in line counts toward the start timeout: 40 students on 2 cores
        # take about a minute and a half for the last one.
        return 300

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        # a script, like jupyterhub-singleuser: `python -m` would put the student's
        # working folder first on sys.path, so a notebook named json.py breaks the start.
        # Its full path in the hub's venv: the hub's PATH need not name the venv.
        return [os.path.join(sysconfig.get_path("scripts"), "pdal-hub-singleuser")]

    def start_slots(self) -> StartSlots:
        """The hub-wide line for this limit (one per event loop's hub process)."""
        slots = self._slots.get(self.concurrent_starts)
        if slots is None:
            slots = self._slots[self.concurrent_starts] = StartSlots(self.concurrent_starts)
        return slots

    async def start(self):
        ticket = self._start_ticket = self.start_slots().enter()
        try:
            if not ticket.active:
                self.log.info(
                    "%s's server waits for a start slot (place %d in line)",
                    self.user.name,
                    ticket.place,
                )
            await ticket.wait_turn()
            url = await super().start()
            await self.wait_until_answering(url)
            return url
        finally:
            ticket.leave()
            self._start_ticket = None

    async def wait_until_answering(self, url) -> None:
        """Return once the new server's /api answers, it exits, or http_timeout passes."""
        if not isinstance(url, str):
            url = f"http://{url[0]}:{url[1]}"
        api_url = url_path_join(url, self.server.base_url, "api")
        client = AsyncHTTPClient()
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline:
            try:
                response = await client.fetch(
                    api_url, raise_error=False, request_timeout=5, follow_redirects=False
                )
                if response.code < 500:
                    return
            except OSError:
                pass
            if await self.poll() is not None:
                return
            await asyncio.sleep(self.ready_check_interval)

    async def progress(self):
        # the spawn-pending page may ask before start() has taken its place in line
        while getattr(self, "_start_ticket", None) is None and getattr(
            self, "_spawn_pending", False
        ):
            await asyncio.sleep(self.ready_check_interval)
        ticket = getattr(self, "_start_ticket", None)
        if ticket is not None:
            while not ticket.active and not ticket.done:
                ticket.changed.clear()
                yield {"progress": 10, "message": queue_message(ticket.place)}
                await ticket.changed.wait()
        yield {"progress": 50, "message": queue_message(0)}
