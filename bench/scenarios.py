"""The five scenarios of issue 6, each run on both setups of a `harness.Lab`."""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import requests

from .client import ServerWatch, login_time, sign_in_to_lab
from .harness import PREFIX, VENV_BIN, Lab, Setup, free_port, proxy_process, stop_server
from .stats import summarize

MB = 1024 * 1024


def bare_lab_start(user: str, timeout: float = 120) -> float:
    """Seconds from starting `jupyter lab` (no hub) as `user` to its /lab page answering."""
    account = pwd.getpwnam(user)
    port = free_port()
    token = os.urandom(8).hex()
    venv_bin = str(VENV_BIN)
    notebooks = os.path.join(account.pw_dir, "notebooks")
    env = {
        "HOME": account.pw_dir,
        "USER": user,
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    start = time.time()
    proc = subprocess.Popen(
        [
            f"{venv_bin}/jupyter-lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={notebooks if os.path.isdir(notebooks) else account.pw_dir}",
        ],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        env=env,
        cwd=account.pw_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.time() - start < timeout:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5)
                if r.status_code == 200:
                    return time.time() - start
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}")
            time.sleep(0.02)
        raise TimeoutError("bare jupyter lab did not answer")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def single_student(lab: Lab, reps: int) -> dict:
    """Scenario 1: one student from sign-in to a loaded /lab, phase by phase, vs bare Lab."""
    user, password = lab.students[0]
    uid = pwd.getpwnam(user).pw_uid
    phases: dict[str, dict[str, list[float]]] = {s.name: {} for s in lab.setups}
    bare: list[float] = []
    for rep in range(reps):
        order = lab.setups if rep % 2 == 0 else list(reversed(lab.setups))
        bare.append(bare_lab_start(user))
        for setup in order:
            watch = ServerWatch(uid, user)
            watch.start()
            result = sign_in_to_lab(setup.hub.url, user, password, timeout=120)
            watch.stop()
            watch.join(5)
            if not result.ok:
                raise RuntimeError(f"{setup.name}: single sign-in failed: {result.error}")
            record = phases[setup.name]
            record.setdefault("total", []).append(result.time_to_lab)
            record.setdefault("login", []).append(result.logged_in - result.start)
            spawn = result.ready - result.logged_in
            if watch.created and watch.answered:
                server = watch.answered - watch.created
                record.setdefault("server start", []).append(server)
                record.setdefault("hub spawn overhead", []).append(spawn - server)
            record.setdefault("first page", []).append(result.page - result.ready)
            stop_server(setup, user)
    out = {"reps": reps, "bare": summarize(bare)}
    for name, record in phases.items():
        out[name] = {phase: summarize(values) for phase, values in record.items()}
    return out


def _cpu_seconds(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        times = proc.cpu_times()
        return times.user + times.system
    except psutil.NoSuchProcess:
        return 0.0


def storm(lab: Lab, setup: Setup, students: int, timeout: float) -> tuple[dict, list[float]]:
    """Scenario 2: `students` sign in at the same moment; time-to-lab, failures, hub CPU."""
    chosen = lab.students[:students]
    hub_proc = psutil.Process(setup.hub.proc.pid)
    proxy = proxy_process(setup.hub)
    cpu_before = _cpu_seconds(hub_proc), _cpu_seconds(proxy)
    barrier = threading.Barrier(len(chosen))

    def one(student):
        barrier.wait(30)
        return sign_in_to_lab(setup.hub.url, student[0], student[1], timeout=timeout)

    started = time.time()
    with ThreadPoolExecutor(len(chosen)) as pool:
        results = list(pool.map(one, chosen))
    wall = time.time() - started
    times = [r.time_to_lab for r in results if r.ok]
    errors = sorted({r.error for r in results if not r.ok})
    summary = {
        "time_to_lab": summarize(times),
        "failures": len(chosen) - len(times),
        "errors": errors[:5],
        "wall_s": wall,
        "hub_cpu_s": _cpu_seconds(hub_proc) - cpu_before[0],
        "proxy_cpu_s": _cpu_seconds(proxy) - cpu_before[1],
        "progress_messages": sorted({m for r in results for m in r.progress})[:8],
    }
    return summary, sorted(times)


def pool_storms(summaries: list[dict], times: list[list[float]]) -> dict:
    """One summary for several storms of one setup: all times pooled, CPU and failures summed."""
    pooled = sorted(t for run in times for t in run)
    return {
        "time_to_lab": summarize(pooled),
        "times": pooled,
        "failures": sum(s["failures"] for s in summaries),
        "errors": sorted({e for s in summaries for e in s["errors"]})[:5],
        "wall_s": max(s["wall_s"] for s in summaries),
        "hub_cpu_s": sum(s["hub_cpu_s"] for s in summaries) / len(summaries),
        "proxy_cpu_s": sum(s["proxy_cpu_s"] for s in summaries) / len(summaries),
        "p95_per_storm": [summarize(run)["p95"] for run in times],
        "progress_messages": sorted({m for s in summaries for m in s["progress_messages"]})[:8],
    }


def _rss_mb(proc: psutil.Process | None) -> float:
    try:
        return proc.memory_info().rss / MB if proc else 0.0
    except psutil.NoSuchProcess:
        return 0.0


def _user_rss_mb(user: str) -> float:
    uid = pwd.getpwnam(user).pw_uid
    total = 0.0
    for proc in psutil.process_iter(["uids", "memory_info"]):
        if proc.info["uids"] and proc.info["uids"].real == uid and proc.info["memory_info"]:
            total += proc.info["memory_info"].rss / MB
    return total


def memory(setup: Setup, students: list[str], settle: float = 5) -> dict:
    """Scenario 4: hub/proxy/idle-server RSS with every student's server running, then the
    total as servers stop one by one (the curve of total vs active students)."""
    time.sleep(settle)
    hub_proc = psutil.Process(setup.hub.proc.pid)
    proxy = proxy_process(setup.hub)
    server_rss = [_user_rss_mb(u) for u in students]
    curve = []
    # students whose server failed to start in the storm have no processes: not active
    running = [u for u, rss in zip(students, server_rss) if rss > 0]
    while True:
        total = _rss_mb(hub_proc) + _rss_mb(proxy) + sum(_user_rss_mb(u) for u in running)
        curve.append((len(running), total))
        if not running:
            break
        stop_server(setup, running.pop())
    return {
        "hub_rss_mb": _rss_mb(hub_proc),
        "proxy_rss_mb": _rss_mb(proxy),
        "server_rss_mb": summarize([r for r in server_rss if r > 0]),
        "total_by_active": sorted(curve),
    }


def flood(lab: Lab, setup: Setup, clients: int, duration: float, legit_logins: int) -> dict:
    """Scenario 3: `clients` threads send wrong passwords while a real student logs in."""
    victim = lab.students[-1][0]
    legit_user, legit_pw = lab.students[0]
    stop = threading.Event()
    attempts = [0] * clients

    def attacker(i: int) -> None:
        end = time.time() + duration + 120
        while not stop.is_set() and time.time() < end:
            try:
                login_time(setup.hub.url, victim, "wrong-" + os.urandom(4).hex(), timeout=30)
            except requests.RequestException:
                pass
            attempts[i] += 1

    threads = [threading.Thread(target=attacker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)
    times, failures = [], 0
    end = time.time() + duration
    for _ in range(legit_logins):
        if time.time() > end:
            break
        try:
            seconds, status = login_time(setup.hub.url, legit_user, legit_pw, timeout=60)
        except requests.RequestException:
            failures += 1
            continue
        if status == 302:
            times.append(seconds)
        else:
            failures += 1
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(60)
    quiet = [login_time(setup.hub.url, legit_user, legit_pw)[0] for _ in range(3)]
    return {
        "clients": clients,
        "login": summarize(times),
        "failures": failures,
        "wrong_attempts": sum(attempts),
        "login_without_flood": summarize(quiet),
    }


def fill_database(setup: Setup, count: int, prefix: str) -> None:
    """Put `count` users straight into the (stopped) hub's database, as a big course would."""
    from jupyterhub import orm

    db = orm.new_session_factory(f"sqlite:///{setup.db_path}")()
    try:
        existing = {name for (name,) in db.query(orm.User.name)}
        for i in range(count):
            name = f"{prefix}db{i:04d}"
            if name not in existing:
                db.add(orm.User(name=name))
        db.commit()
    finally:
        db.close()


def api_latency(lab: Lab, sizes: list[int], requests_per_call: int) -> dict:
    """Scenario 5: latency of the admin panel's API calls with 100 and 1000 users in the DB."""
    out: dict = {}
    for size in sizes:
        for setup in lab.setups:
            setup.hub.stop()
            fill_database(setup, size, PREFIX)
            setup.hub.start(timeout=180)
        for setup in lab.setups:
            calls = {
                "GET /users?limit=50": ("/users", {"limit": 50, "offset": 0}),
                "GET /users?limit=200": ("/users", {"limit": 200, "offset": 0}),
                "GET /users/NAME": (f"/users/{lab.students[0][0]}", None),
            }
            result = {}
            for label, (path, params) in calls.items():
                times = []
                for _ in range(requests_per_call):
                    start = time.perf_counter()
                    setup.hub.api("GET", path, setup.token, params=params).raise_for_status()
                    times.append(time.perf_counter() - start)
                result[label] = summarize(times)
            out.setdefault(str(size), {})[setup.name] = result
    return out
