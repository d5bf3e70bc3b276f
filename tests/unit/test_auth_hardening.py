"""Throttling, equal failure timing and failure logging of PdalAuthenticator (PAM mocked)."""

from __future__ import annotations

import asyncio
import logging
import pwd
import time
from types import SimpleNamespace
from unittest import mock

import pamela
import pytest
from tornado import web

from pdal_hub.auth import (
    LOCKED_ACCOUNT,
    MALFORMED,
    NOT_ADDED,
    UNKNOWN_ACCOUNT,
    WRONG_PASSWORD,
    PdalAuthenticator,
    PdalLoginHandler,
    client_address,
    form_problem,
    linux_account_locked,
    undecodable_fields,
)

PASSWORDS = {"alice": "right", "bob": "right", "eve": "right", "lock": "right"}
SHADOW = "alice:$y$hash:1::::::\nlock:!$y$hash:1::::::\nnopw:*:1::::::\n"


def fake_pam_authenticate(username, password, service, encoding):
    time.sleep(0.01)
    if PASSWORDS.get(username) != password or username == "lock":
        raise pamela.PAMError("Authentication failure", 7)


def passwd(name: str) -> pwd.struct_passwd | None:
    if name not in PASSWORDS:
        return None
    return pwd.struct_passwd((name, "x", 1001, 1001, "", f"/home/{name}", "/bin/bash"))


def handler(address: str = "10.0.0.1") -> SimpleNamespace:
    return SimpleNamespace(
        request=SimpleNamespace(remote_ip=address, headers={}, connection=SimpleNamespace())
    )


@pytest.fixture
def authenticator(tmp_path):
    (tmp_path / "pdal-hub").write_text("")
    auth = PdalAuthenticator(
        pam_service_dir=str(tmp_path),
        allowed_users={"alice", "bob"},
        failed_login_delay=0.3,
        failures_per_pair=3,
        failures_per_address=10,
        failures_per_account=20,
    )
    with (
        mock.patch.object(pamela, "authenticate", fake_pam_authenticate),
        mock.patch.object(pamela, "check_account", lambda *a, **k: None),
        mock.patch.object(PdalAuthenticator, "lookup_account", lambda self, n: passwd(n)),
        mock.patch.object(PdalAuthenticator, "read_shadow", lambda self: SHADOW),
    ):
        yield auth


async def timed_login(auth, username, password, address="10.0.0.1"):
    start = time.monotonic()
    result = await auth.get_authenticated_user(
        handler(address), {"username": username, "password": password}
    )
    return result, time.monotonic() - start


async def test_right_password_of_added_user_is_not_delayed(authenticator):
    authenticator.failed_login_delay = 5.0
    result, seconds = await timed_login(authenticator, "alice", "right")
    assert result["name"] == "alice"
    assert seconds < 2.5


@pytest.mark.parametrize(
    "username, password, reason",
    [
        ("alice", "wrong", WRONG_PASSWORD),
        ("nobody", "right", UNKNOWN_ACCOUNT),
        ("lock", "right", LOCKED_ACCOUNT),
        ("eve", "right", NOT_ADDED),
        ("x" * 40, "right", MALFORMED),
        ("alice", "p" * 5000, MALFORMED),
        ("ali\x00ce", "right", MALFORMED),
    ],
)
async def test_every_failure_takes_the_same_time_and_logs_its_reason(
    authenticator, caplog, username, password, reason
):
    caplog.set_level(logging.WARNING)
    result, seconds = await timed_login(authenticator, username, password, "192.0.2.7")
    assert result is None
    assert 0.29 <= seconds < 0.45
    failures = [r.getMessage() for r in caplog.records if "Failed login from" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].startswith("Failed login from 192.0.2.7 for ")
    assert failures[0].endswith(reason)
    assert len(failures[0]) < 200


async def test_failures_wait_without_holding_pam_threads(authenticator):
    start = time.monotonic()
    results = await asyncio.gather(
        *(timed_login(authenticator, f"nobody{i}", "x", f"10.1.0.{i}") for i in range(40))
    )
    assert all(result is None for result, _ in results)
    # 40 failures with 4 PAM threads would take >= 10 x delay if the delay held a thread
    assert time.monotonic() - start < 1.5


async def test_guesses_from_unknown_places_leave_pam_threads_for_known_students(authenticator):
    await timed_login(authenticator, "alice", "right", "10.0.0.1")  # alice's usual place
    slow_pam_calls = []

    def slow_pam(username, password, service, encoding):
        slow_pam_calls.append(username)
        time.sleep(0.2)
        fake_pam_authenticate(username, password, service, encoding)

    with mock.patch.object(pamela, "authenticate", slow_pam):
        flood = asyncio.gather(
            *(timed_login(authenticator, f"guess{i}", "x", f"10.2.{i % 3}.1") for i in range(24))
        )
        await asyncio.sleep(0.05)
        result, seconds = await timed_login(authenticator, "alice", "right", "10.0.0.1")
        await flood
    assert result["name"] == "alice"
    # with all 4 PAM threads open to the flood, alice would wait 24 x 0.2 s / 4 = 1.2 s
    assert seconds < 0.6
    assert len(slow_pam_calls) == 25
    assert not authenticator._address_turns


async def test_pair_lock_refuses_with_a_clear_message_without_asking_pam(authenticator, caplog):
    for _ in range(3):
        await timed_login(authenticator, "alice", "wrong")
    with mock.patch.object(pamela, "authenticate") as pam:
        start = time.monotonic()
        with pytest.raises(web.HTTPError) as refused:
            await authenticator.get_authenticated_user(
                handler(), {"username": "alice", "password": "right"}
            )
        assert time.monotonic() - start >= 0.29
        pam.assert_not_called()
    assert refused.value.status_code == 429
    assert "Too many failed logins" in refused.value.log_message
    assert "Failed login from 10.0.0.1 for 'alice': too many failed logins (pair paused)" in (
        caplog.text
    )
    # the rest of the class behind that address, and alice elsewhere, still log in
    assert (await timed_login(authenticator, "bob", "right"))[0]["name"] == "bob"
    assert (await timed_login(authenticator, "alice", "right", "10.9.9.9"))[0]["name"] == "alice"


async def test_lock_message_is_the_same_for_every_account(authenticator):
    messages = []
    for username in ("alice", "nobody"):
        for _ in range(3):
            await timed_login(authenticator, username, "wrong")
        with pytest.raises(web.HTTPError) as refused:
            await timed_login(authenticator, username, "right")
        messages.append(refused.value.log_message)
    assert messages[0] == messages[1]


@pytest.mark.parametrize("data", [{}, {"username": "alice"}, {"password": "x"}, None])
async def test_missing_form_fields_are_a_clear_400(authenticator, data):
    with pytest.raises(web.HTTPError) as refused:
        await authenticator.get_authenticated_user(handler(), data)
    assert refused.value.status_code == 400
    assert "needs a username and a password" in refused.value.log_message


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"username": "alice", "password": "pw"}, None),
        ({"username": "alice", "password": ""}, None),
        ({"username": "", "password": "pw"}, MALFORMED),
        ({"username": "a" * 33, "password": "pw"}, MALFORMED),
        ({"username": "a" * 32, "password": "pw"}, None),
        ({"username": "alice", "password": "p" * 1025}, MALFORMED),
        ({"username": "alice", "password": "p\x00w"}, MALFORMED),
        ({"username": "alice"}, "missing"),
        ({"username": ["alice"], "password": "pw"}, "missing"),
        ("username=alice", "missing"),
    ],
)
def test_form_problem(data, problem):
    assert form_problem(data, 32, 1024) == problem


@pytest.mark.parametrize(
    "username, locked",
    [("alice", False), ("lock", True), ("nopw", True), ("nobody", False), ("ali", False)],
)
def test_linux_account_locked(username, locked):
    assert linux_account_locked(SHADOW, username) is locked


async def test_no_handler_means_no_throttle(authenticator):
    result = await authenticator.get_authenticated_user(
        None, {"username": "alice", "password": "right"}
    )
    assert result["name"] == "alice"


@pytest.mark.parametrize(
    "body, bad",
    [
        ({"username": [b"alice"], "password": [b"pw"]}, []),
        ({"username": ["\u00e9l\u00e8ve".encode()], "password": [b"pw"]}, []),
        ({"username": [b"\xff\xfe"], "password": [b"pw"]}, ["username"]),
        ({"username": [b"a"], "password": [b"ok", b"\xc3"]}, ["password"]),
    ],
)
def test_undecodable_fields(body, bad):
    assert undecodable_fields(body) == bad


def test_login_handler_is_pdal_hubs(authenticator):
    assert authenticator.get_handlers(None) == [("/login", PdalLoginHandler)]


@pytest.mark.parametrize(
    "forwarded_for, peer, trusted, expected",
    [
        (None, "10.0.0.1", set(), "10.0.0.1"),
        ("", "10.0.0.1", set(), "10.0.0.1"),
        # configurable-http-proxy appends the peer it saw
        ("192.0.2.7", "127.0.0.1", set(), "192.0.2.7"),
        # a client's own header stays to the left of what the proxy appended
        ("203.0.113.9, 192.0.2.7", "127.0.0.1", set(), "192.0.2.7"),
        # nginx, then configurable-http-proxy, with nginx's address trusted
        ("203.0.113.9, 192.0.2.7, 127.0.0.1", "127.0.0.1", {"127.0.0.1"}, "192.0.2.7"),
        ("not-an-ip", "127.0.0.1", set(), "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1", {"127.0.0.1"}, "127.0.0.1"),
        ("2001:db8::1", "127.0.0.1", set(), "2001:db8::1"),
    ],
)
def test_client_address(forwarded_for, peer, trusted, expected):
    assert client_address(forwarded_for, peer, frozenset(trusted)) == expected


async def test_x_real_ip_does_not_choose_the_address(authenticator, caplog):
    request = SimpleNamespace(
        remote_ip="203.0.113.50",  # what tornado made of the client's X-Real-Ip
        headers={"X-Real-Ip": "203.0.113.50", "X-Forwarded-For": "192.0.2.7"},
        connection=SimpleNamespace(context=SimpleNamespace(_orig_remote_ip="127.0.0.1")),
    )
    await authenticator.get_authenticated_user(
        SimpleNamespace(request=request), {"username": "alice", "password": "wrong"}
    )
    assert "Failed login from 192.0.2.7 for 'alice'" in caplog.text
