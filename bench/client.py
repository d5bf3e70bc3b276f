"""A student's browser, reduced to its HTTP requests: sign in, wait for the server, load /lab.

Follows what JupyterHub's pages make a browser do: the login form, the redirect to
the spawn-pending page, its progress event stream, then /user/NAME/lab through the
OAuth round trip. Each phase is timed with time.time() so it can be lined up with
process start times from /proc.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field

import psutil
import requests

from .harness import post_login_form


@dataclass
class SignIn:
    """Timestamps (epoch seconds) of one student's way to a loaded /lab."""

    user: str
    start: float = 0.0
    logged_in: float | None = None
    ready: float | None = None
    page: float | None = None
    error: str | None = None
    progress: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.page is not None

    @property
    def time_to_lab(self) -> float | None:
        return self.page - self.start if self.ok else None


def _wait_ready(
    session: requests.Session, hub_url: str, user: str, deadline: float, sign_in: SignIn
) -> None:
    """Read the spawn progress stream, as the spawn-pending page does, until ready."""
    xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf")
    url = f"{hub_url}/hub/api/users/{user}/server/progress"
    remaining = max(1.0, deadline - time.time())
    with session.get(url, params={"_xsrf": xsrf}, stream=True, timeout=(10, remaining)) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                if time.time() > deadline:
                    raise TimeoutError("no ready event before the deadline")
                continue
            event = json.loads(line[5:])
            if event.get("message"):
                sign_in.progress.append(event["message"])
            if event.get("failed"):
                raise RuntimeError(f"spawn failed: {event.get('message')}")
            if event.get("ready"):
                return
    raise RuntimeError("progress stream ended without a ready event")


def sign_in_to_lab(hub_url: str, user: str, password: str, timeout: float = 300) -> SignIn:
    """Sign `user` in and load their /lab page; never raises, errors land in `.error`."""
    sign_in = SignIn(user, start=time.time())
    deadline = sign_in.start + timeout
    session = requests.Session()
    try:
        r = post_login_form(hub_url, session, {"username": user, "password": password}, 60)
        if r.status_code != 302:
            raise RuntimeError(f"login answered {r.status_code}")
        sign_in.logged_in = time.time()
        # the browser follows the login redirect: /hub/ -> /hub/spawn -> pending or server
        r = session.get(f"{hub_url}/hub/spawn/{user}", timeout=max(10, deadline - time.time()))
        if "/hub/spawn-pending/" in r.url:
            _wait_ready(session, hub_url, user, deadline, sign_in)
        elif r.status_code >= 400:
            raise RuntimeError(f"spawn answered {r.status_code}")
        sign_in.ready = time.time()
        r = session.get(f"{hub_url}/user/{user}/lab", timeout=max(10, deadline - time.time()))
        if r.status_code != 200 or "/lab" not in r.url:
            raise RuntimeError(f"/lab answered {r.status_code} at {r.url}")
        sign_in.page = time.time()
    except Exception as e:  # noqa: BLE001 (a failed sign-in is a measurement, not a crash)
        sign_in.error = f"{type(e).__name__}: {e}"[:300]
    finally:
        session.close()
    return sign_in


def login_time(hub_url: str, user: str, password: str, timeout: float = 60) -> tuple[float, int]:
    """Seconds the login form's POST takes, and its status (302 = signed in)."""
    session = requests.Session()
    try:
        session.get(f"{hub_url}/hub/login", timeout=timeout)
        start = time.perf_counter()
        r = post_login_form(hub_url, session, {"username": user, "password": password}, timeout)
        return time.perf_counter() - start, r.status_code
    finally:
        session.close()


def process_start_epoch(pid: int) -> float:
    """When process `pid` started, in epoch seconds, to 10 ms.

    psutil's create_time() adds the boot time, which /proc/stat gives in whole
    seconds only; /proc/uptime and the process's start tick are both precise.
    """
    with open(f"/proc/{pid}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")


class ServerWatch(threading.Thread):
    """Watches for `uid`'s server process: when it was created, when its /api answered.

    Polls /proc every `interval` seconds (as root), then the server's own port
    directly (not through the proxy or the hub).
    """

    def __init__(self, uid: int, user: str, timeout: float = 120, interval: float = 0.02):
        super().__init__(daemon=True)
        self.uid, self.user, self.timeout, self.interval = uid, user, timeout, interval
        self.created: float | None = None
        self.answered: float | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def _server_process(self) -> psutil.Process | None:
        for proc in psutil.process_iter(["uids"]):
            if proc.info["uids"] and proc.info["uids"].real == self.uid:
                return proc
        return None

    def _listening_port(self, proc: psutil.Process) -> int | None:
        try:
            for conn in proc.net_connections("tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    return conn.laddr.port
        except psutil.Error:
            pass
        return None

    def run(self) -> None:
        deadline = time.time() + self.timeout
        proc = port = None
        while not self._stop_event.is_set() and time.time() < deadline:
            if proc is None:
                proc = self._server_process()
                if proc is not None:
                    try:
                        self.created = process_start_epoch(proc.pid)
                    except (OSError, IndexError, ValueError):
                        proc = None
            elif port is None:
                port = self._listening_port(proc)
            else:
                try:
                    r = requests.get(f"http://127.0.0.1:{port}/user/{self.user}/api", timeout=2)
                    if r.status_code < 500:
                        self.answered = time.time()
                        return
                except requests.RequestException:
                    pass
            time.sleep(self.interval)
