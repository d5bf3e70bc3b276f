"""Login under attack, against a real hub with real PAM users, on 127.0.0.1 only.

Clients play different machines by connecting from different loopback addresses
(127.0.0.x), so per-address throttling is exercised for real. The hub runs the
shipped configuration; only `failure_window` is shortened so that the unlock can
be observed within the test.
"""

from __future__ import annotations

import difflib
import re
import secrets
import shutil
import socket
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hubharness import PREFIX, RealHub, bound_session, post_login_form, run, wait_for

from pdal_hub.resources import data_path

WINDOW = 30  # seconds; c.PdalAuthenticator.failure_window for this module's hub
FLOOD_CLIENTS = 8
FLOOD_CONNECTIONS = 3  # parallel connections per flooding client
FLOOD_SECONDS = 12
INVALID = "Invalid username or password"


@pytest.fixture(scope="module")
def login_hub(linux_users):
    admin_password = secrets.token_urlsafe(12)
    admin = linux_users.create("ladm", admin_password)
    workdir = Path(tempfile.mkdtemp(prefix="pdal-hub-security-"))
    hub = RealHub(
        workdir, admin=admin, extra_config=f"c.PdalAuthenticator.failure_window = {WINDOW}\n"
    )
    hub.start()
    hub.token = hub.admin_token(admin_password)
    yield hub
    hub.cleanup()


@pytest.fixture(scope="module")
def students(login_hub, linux_users):
    """Six students with passwords, added to the hub."""
    accounts = []
    for i in range(6):
        password = secrets.token_urlsafe(12)
        accounts.append((linux_users.create(f"l{i}", password), password))
    r = login_hub.api(
        "POST", "/users", login_hub.token, json={"usernames": [n for n, _ in accounts]}
    )
    assert r.status_code == 201, r.text
    return accounts


def timed_login(hub: RealHub, username: str, password: str, source: str):
    session = bound_session(source)
    session.get(f"{hub.url}/hub/login", timeout=10)
    start = time.monotonic()
    response = post_login_form(hub.url, session, {"username": username, "password": password})
    return response, time.monotonic() - start


def login_error(response: requests.Response) -> str:
    """The error text of the login page (what a person reads)."""
    match = re.search(r'<p class="login_error">\s*(.*?)\s*</p>', response.text, re.S)
    return match.group(1) if match else ""


def test_legitimate_logins_stay_fast_during_a_wrong_password_flood(login_hub, students):
    legit = students[:2]
    for name, password in legit:  # students who used the lab from home before
        assert timed_login(login_hub, name, password, "127.0.0.3")[0].status_code == 302
    stop = time.monotonic() + FLOOD_SECONDS
    answers: list[list] = [[] for _ in range(FLOOD_CLIENTS * FLOOD_CONNECTIONS)]

    def flood(i: int) -> None:
        # wrong passwords for real students and for made-up names, alternately
        session = bound_session(f"127.0.0.{10 + i % FLOOD_CLIENTS}")
        while time.monotonic() < stop:
            n = len(answers[i])
            name = f"{PREFIX}guess{i}x{n}" if n % 2 else students[2 + i % 4][0]
            try:
                r = post_login_form(
                    login_hub.url, session, {"username": name, "password": "wrong"}, 10
                )
                answers[i].append(r.status_code)
            except requests.RequestException as e:
                answers[i].append(type(e).__name__)

    flooders = [threading.Thread(target=flood, args=(i,)) for i in range(len(answers))]
    for thread in flooders:
        thread.start()
    time.sleep(1.5)
    seconds = []
    while time.monotonic() < stop - 1:
        for name, password in legit:
            response, elapsed = timed_login(login_hub, name, password, "127.0.0.3")
            assert response.status_code == 302, login_error(response)
            seconds.append(elapsed)
        time.sleep(0.2)
    for thread in flooders:
        thread.join(30)
    flood_answers = [a for client in answers for a in client]
    p95 = statistics.quantiles(seconds, n=20)[-1]
    print(
        f"legit logins under flood: n={len(seconds)} median={statistics.median(seconds):.3f}s "
        f"p95={p95:.3f}s max={max(seconds):.3f}s; flood requests={len(flood_answers)}"
    )
    assert all(len(client) >= 2 for client in answers), "a flooding connection stalled"
    assert set(flood_answers) <= {403, 429}, flood_answers
    assert len(seconds) >= 10
    assert p95 < 0.5, seconds


def test_four_failure_kinds_look_the_same(login_hub, students, linux_users):
    student, password = students[5]
    locked_password = secrets.token_urlsafe(12)
    locked = linux_users.create("lock", locked_password)
    login_hub.api("POST", "/users", login_hub.token, json={"usernames": [locked]})
    run(["usermod", "--lock", locked])
    outsider_password = secrets.token_urlsafe(12)
    outsider = linux_users.create("out", outsider_password)  # never added by the admin
    kinds = {
        "wrong password": (student, password + "x"),
        "unknown account": (f"{PREFIX}nobody", "whatever-pass"),
        "Linux account locked or expired": (locked, locked_password),
        "password accepted but not added to the hub by an admin": (outsider, outsider_password),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    pages = {}
    for _ in range(4):  # below the per-pair limit of 5
        for kind, (name, pw) in kinds.items():
            response, elapsed = timed_login(login_hub, name, pw, "127.0.0.20")
            assert response.status_code == 403, (kind, response.status_code)
            assert login_error(response) == INVALID
            times[kind].append(elapsed)
            page = response.text.replace(name, "NAME")
            pages[kind] = re.sub(r'(_xsrf" value=|xsrf_token: )"[^"]*"', "XSRF", page)
    medians = {kind: statistics.median(t) for kind, t in times.items()}
    print("failure medians:", {k: round(v, 3) for k, v in medians.items()})
    assert max(medians.values()) - min(medians.values()) < 0.15, medians
    first = pages["wrong password"]
    for kind, page in pages.items():
        diff = "\n".join(difflib.unified_diff(first.splitlines(), page.splitlines(), lineterm=""))
        assert not diff, f"the refusal page for {kind} differs:\n{diff}"
    log = login_hub.log()
    for kind, (name, _) in kinds.items():
        assert f"Failed login from 127.0.0.20 for {name!r}: {kind}" in log


def test_flood_against_one_username_locks_only_that_pair_and_unlocks(login_hub, students):
    (victim, victim_password), (classmate, classmate_password) = students[4], students[3]
    start = time.monotonic()
    with ThreadPoolExecutor(12) as pool:  # parallel guesses cannot slip past the limit
        answers = list(
            pool.map(
                lambda i: post_login_form(
                    login_hub.url,
                    bound_session("127.0.0.40"),
                    {"username": victim, "password": f"guess{i}"},
                ).status_code,
                range(12),
            )
        )
    assert sorted(answers) == [403] * 5 + [429] * 7, answers

    # The victim at the attacker's address is paused, even with the right password...
    response, _ = timed_login(login_hub, victim, victim_password, "127.0.0.40")
    assert response.status_code == 429
    assert "Too many failed logins" in login_error(response)
    assert "minute" in login_error(response)
    # ...but not a classmate behind the same address, nor the victim from elsewhere.
    assert timed_login(login_hub, classmate, classmate_password, "127.0.0.40")[0].status_code == 302
    assert timed_login(login_hub, victim, victim_password, "127.0.0.41")[0].status_code == 302
    assert "Failed login from 127.0.0.40 for" in login_hub.log()
    assert "too many failed logins (pair paused)" in login_hub.log()

    # The pause ends one failure_window after the failures that caused it.
    time.sleep(max(0.0, start + WINDOW + 1 - time.monotonic()))
    assert timed_login(login_hub, victim, victim_password, "127.0.0.40")[0].status_code == 302


def test_password_spraying_pauses_the_address_but_not_known_students(login_hub, students):
    regular, regular_password = students[0]
    assert timed_login(login_hub, regular, regular_password, "127.0.0.60")[0].status_code == 302
    with ThreadPoolExecutor(20) as pool:
        answers = list(
            pool.map(
                lambda i: post_login_form(
                    login_hub.url,
                    bound_session("127.0.0.60"),
                    {"username": f"{PREFIX}spray{i}", "password": "x"},
                ).status_code,
                range(55),
            )
        )
    assert sorted(answers) == [403] * 50 + [429] * 5, answers
    assert "address paused" in login_hub.log()
    # a student who logged in from this address before still gets in
    assert timed_login(login_hub, regular, regular_password, "127.0.0.60")[0].status_code == 302


@pytest.mark.parametrize(
    "data, status, shown",
    [
        ({"username": "a" * 20000, "password": "x"}, 403, INVALID),
        ({"username": "student", "password": "p" * 200000}, 403, INVALID),
        ({"username": "bad\nFailed login from 203.0.113.9 for x", "password": "x"}, 403, INVALID),
        ({"username": "nul\x00name", "password": "x"}, 403, INVALID),
        ({"username": "\u00e9l\u00e8ve", "password": "\u00fc" * 50}, 403, INVALID),
        ({"username": "student"}, 400, "needs a username and a password"),
        ({"password": "x"}, 400, "needs a username and a password"),
        ({"username": "x", "password": "x", "extra": "y" * 5_000_000}, 403, INVALID),
    ],
)
def test_bad_login_input_is_refused_clearly_without_flooding_the_log(
    login_hub, data, status, shown
):
    before = len(login_hub.log())
    session = bound_session("127.0.0.80")
    response = post_login_form(login_hub.url, session, data)
    assert response.status_code == status
    assert shown in login_error(response)
    wait_for(lambda: "/hub/login" in login_hub.log()[before:], 10, what="the access log line")
    added = login_hub.log()[before:]
    assert "Traceback" not in added
    assert len(added) < 2000, added
    assert "\nFailed login from 203.0.113.9" not in added


def test_non_utf8_form_is_refused_without_traceback(login_hub):
    session = bound_session("127.0.0.81")
    session.get(f"{login_hub.url}/hub/login", timeout=10)
    before = len(login_hub.log())
    body = b"username=%ff%fe&password=x&_xsrf=" + session.cookies.get("_xsrf").encode()
    response = session.post(
        f"{login_hub.url}/hub/login",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code in (400, 403)
    assert "Traceback" not in login_hub.log()[before:]


def test_fail2ban_filter_matches_every_failed_login_line(login_hub):
    if not shutil.which("fail2ban-regex"):
        pytest.skip("fail2ban is not installed (tests/run.sh installs it)")
    log = login_hub.log()
    expected = [
        line for line in log.splitlines() if re.search(r"\] Failed login from \S+ for ", line)
    ]
    assert len(expected) > 20
    result = run(["fail2ban-regex", "-v", str(login_hub.log_path), str(fail2ban_filter())])
    matched = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", result.stdout, re.M)
    assert matched and int(matched.group(1)) == len(expected), result.stdout[-3000:]
    hosts = set(re.findall(r"^\|\s+(\S+)\s+\w{3} \w{3} \d", result.stdout, re.M))
    assert {"127.0.0.20", "127.0.0.40", "127.0.0.60"} <= hosts, result.stdout[-3000:]
    assert "203.0.113.9" not in hosts  # named inside a hostile username


def fail2ban_filter() -> Path:
    return data_path("fail2ban-filter")


def test_huge_request_body_is_refused_without_reading_it(login_hub):
    before = len(login_hub.log())
    port = int(login_hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(
            b"POST /hub/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 500000000\r\n\r\nusername=x&password="
        )
        status_line = conn.makefile("rb").readline()
    assert status_line.split()[1] == b"400", status_line
    added = login_hub.log()[before:]
    assert "Traceback" not in added
    assert len(added) < 2000


def test_fail2ban_jail_loads_with_the_filter(tmp_path):
    if not shutil.which("fail2ban-client") or not Path("/etc/fail2ban").is_dir():
        pytest.skip("fail2ban is not installed (tests/run.sh installs it)")
    config = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", config)
    shutil.copy(fail2ban_filter(), config / "filter.d" / "pdal-hub.conf")
    shutil.copy(data_path("fail2ban-jail"), config / "jail.d" / "pdal-hub.conf")
    dump = run(["fail2ban-client", "-c", str(config), "-d"], timeout=60).stdout
    assert "['add', 'pdal-hub', 'systemd']" in dump
    assert "Failed login from <ADDR> for" in dump
    assert "'addjournalmatch', '_SYSTEMD_UNIT=jupyterhub.service'" in dump


@pytest.mark.parametrize(
    "headers",
    [{"X-Real-Ip": "203.0.113.50"}, {"X-Forwarded-For": "203.0.113.51"}],
)
def test_client_cannot_choose_the_address_the_hub_logs(login_hub, headers):
    session = bound_session("127.0.0.90")
    session.headers.update(headers)
    r = post_login_form(login_hub.url, session, {"username": f"{PREFIX}spoof", "password": "x"})
    assert r.status_code == 403
    log = login_hub.log()
    assert f"Failed login from 127.0.0.90 for '{PREFIX}spoof'" in log
    assert "Failed login from 203.0.113.5" not in log
