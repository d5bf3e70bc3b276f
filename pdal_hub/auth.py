"""PAM login with an admin-managed allowlist, hardened against guessing.

Nobody logs in until an admin adds them (admin panel, REST API or the
``pdal-hub users`` command); reserved and system accounts never log in.

Every failed login ends at the same moment after the request started
(`failed_login_delay`), whatever the reason, so response time tells an
attacker nothing; the wait is an asyncio sleep, so a flood of wrong passwords
holds no PAM thread. Repeated failures lock an (account, address) pair, an
address or an account for a while (`pdal_hub.throttle`). Each failure is
logged once, with the client address and the real reason, for the admin and
for fail2ban.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from jupyterhub.auth import PAMAuthenticator
from jupyterhub.handlers.login import LoginHandler
from tornado import web
from tornado.netutil import is_valid_ip
from traitlets import Float, Instance, Integer, Unicode, default

from .accounts import LINUX_USERNAME_PATTERN, AccountPolicy
from .throttle import LoginThrottle, ThrottleLimits

#: Why a login failed, as the admin reads it in the log (the client never sees it).
WRONG_PASSWORD = "wrong password"
UNKNOWN_ACCOUNT = "unknown account"
LOCKED_ACCOUNT = "Linux account locked or expired"
NOT_ADDED = "password accepted but not added to the hub by an admin"
REFUSED_NAME = "password accepted but the username is invalid or blocked"
REFUSED_ACCOUNT = "reserved or system account"
MALFORMED = "malformed username or password"
THROTTLED = "too many failed logins"


def log_safe(username: str, limit: int = 32) -> str:
    """`username` shortened for a log line, so hostile input cannot flood the log."""
    if len(username) <= limit:
        return username
    return f"{username[:limit // 2]}...({len(username)} chars)"


def client_address(forwarded_for: str | None, peer: str, trusted: set[str] | frozenset[str]) -> str:
    """The address a login attempt comes from, as far as the hub can trust it.

    The rightmost `X-Forwarded-For` entry that is not a `trusted` proxy: the
    proxy in front of the hub (configurable-http-proxy, nginx) appends the peer
    it saw, so anything a client wrote there itself stays to the left. Unlike
    tornado's own `remote_ip`, `X-Real-Ip` is ignored: the proxy passes a
    client's `X-Real-Ip` through unchanged, so a client could name any address.
    """
    for candidate in reversed((forwarded_for or "").split(",")):
        candidate = candidate.strip()
        if candidate and candidate not in trusted:
            return candidate if is_valid_ip(candidate) else peer
    return peer


def linux_account_locked(shadow_text: str, username: str) -> bool:
    """Whether /etc/shadow content marks `username`'s password locked or unusable."""
    for line in shadow_text.splitlines():
        name, _, rest = line.partition(":")
        if name == username:
            password_field = rest.split(":", 1)[0]
            return password_field.startswith(("!", "*")) or password_field == ""
    return False


def read_shadow() -> str:
    """/etc/shadow (root only); empty if it cannot be read."""
    try:
        with open("/etc/shadow") as f:
            return f.read()
    except OSError:
        return ""


def form_problem(data: object, max_username: int, max_password: int) -> str | None:
    """Why login form `data` cannot be a real login attempt, or None.

    Returns "missing" when a field is absent (the form is broken, not the
    person's input) and MALFORMED when a field is present but cannot be a valid
    username or password, so it is refused without asking PAM.
    """
    if not isinstance(data, dict):
        return "missing"
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return "missing"
    if not username or len(username) > max_username or len(password) > max_password:
        return MALFORMED
    if "\x00" in username or "\x00" in password:
        return MALFORMED
    return None


@dataclass
class LoginAttempt:
    """What one login attempt found out, filled in by the pipeline's stages."""

    reason: str = REFUSED_NAME


@dataclass
class AddressTurn:
    """One password check at a time per client address; `waiting` counts the queue."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


_attempt: ContextVar[LoginAttempt | None] = ContextVar("pdal_hub_login_attempt", default=None)


def _note(reason: str) -> None:
    attempt = _attempt.get()
    if attempt is not None:
        attempt.reason = reason


def missing_account_message(username: str) -> str:
    """What an admin is told when they add a name that has no Linux account."""
    return (
        f"There is no Linux account named {username!r}. Create it first "
        f"(pdal-hub users add {username}, or adduser {username}) and add the user "
        "again, or set PdalAuthenticator.create_system_users = True to let the hub "
        "create accounts."
    )


def undecodable_fields(body_arguments: dict[str, list[bytes]]) -> list[str]:
    """Names of form fields whose values are not UTF-8 text."""
    bad = []
    for name, values in body_arguments.items():
        try:
            for value in values:
                value.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(name)
    return bad


class PdalLoginHandler(LoginHandler):
    """JupyterHub's login form, refusing a form that is not UTF-8 text with a clear 400.

    JupyterHub's own handler answers such a form with a traceback in the log,
    because rendering the error page reads the undecodable username again.
    """

    async def prepare(self) -> None:
        await super().prepare()
        bad = undecodable_fields(self.request.body_arguments)
        if bad:
            for name in bad:
                self.request.body_arguments.pop(name, None)
                self.request.arguments.pop(name, None)
            self.log.warning(
                "Refused login form from %s: fields %s are not UTF-8 text",
                self.authenticator.client_address(self.request),
                ", ".join(repr(log_safe(name)) for name in bad[:5]),
            )
            raise web.HTTPError(400, "The login form was garbled. Reload the page and try again.")


class PdalAuthenticator(AccountPolicy, PAMAuthenticator):
    """PAMAuthenticator whose allowlist is managed by the hub's admins."""

    service = Unicode(
        "pdal-hub",
        config=True,
        help="""
        PAM service used to check passwords: /etc/pam.d/<service>.

        Default "pdal-hub", installed by `pdal-hub install`: pam_unix without the
        failure delay, so a wrong-password flood cannot tie up the hub's PAM threads.
        Set "login" to use the distribution's login stack instead.
        """,
    )

    pam_service_dir = Unicode(
        "/etc/pam.d",
        config=True,
        help="Where PAM service files live; used only to warn when `service` is missing.",
    )

    failed_login_delay = Float(
        2.0,
        config=True,
        help="""
        Seconds from the start of a login request to the answer when it fails.

        Every failure (wrong password, unknown or locked account, a user no admin
        has added, a paused login) is answered at the same moment, so timing tells
        an attacker nothing. The wait holds no thread: other people's logins go on
        meanwhile. Keep it above the time PAM takes to check a password on a busy
        machine (well under a second with pdal-hub's PAM service).
        """,
    )

    failures_per_pair = Integer(
        5,
        config=True,
        help="""
        Failed logins for one account from one client address, within
        `failure_window`, after which that account is paused from that address.
        Other accounts from the same address and the same account from elsewhere
        are not affected. 0 turns this limit off.
        """,
    )

    failures_per_address = Integer(
        50,
        config=True,
        help="""
        Failed logins from one client address, over all accounts, within
        `failure_window`, after which that address is paused (password spraying).
        Accounts that logged in successfully from that address in the last
        `remember_success_seconds` still get in, so a class behind one NAT address
        is not locked out by one attacker. 0 turns this limit off.
        """,
    )

    failures_per_account = Integer(
        100,
        config=True,
        help="""
        Failed logins for one account, over all addresses, within `failure_window`,
        after which that account is paused except from addresses it logged in from
        recently. Keep it well above `failures_per_pair`, so one attacker who knows a
        username cannot lock that student out. 0 turns this limit off.
        """,
    )

    failure_window = Float(
        600.0,
        config=True,
        help="""
        Seconds over which failed logins are counted; a pause ends this long after
        the failures that caused it. Refused attempts during a pause do not count.
        """,
    )

    remember_success_seconds = Float(
        7 * 24 * 3600.0,
        config=True,
        help="""
        How long an (account, address) pair that logged in successfully stays
        exempt from the address and account limits (default one week).
        """,
    )

    throttle_memory = Integer(
        20000,
        config=True,
        help="""
        How many accounts, addresses and (account, address) pairs the login limits
        remember each; the oldest are forgotten first. Bounds the memory an attacker
        can make the hub use by trying many names from many addresses.
        """,
    )

    untrusted_pam_checks = Integer(
        1,
        config=True,
        help="""
        How many password checks may run at once for logins from an address the
        account has not logged in from recently; each address gets one at a time.

        The others wait their turn without holding a thread, so a flood of guesses
        from unknown places can use at most this many PAM threads
        (PAMAuthenticator.executor_threads, default 4) and CPU cores for password
        hashing, leaving the rest to students logging in from where they did before.
        Default 1 (about 20 checks a second); keep it below executor_threads.
        """,
    )

    max_username_length = Integer(
        32,
        config=True,
        help="Longer usernames are refused without asking PAM (Linux allows 32).",
    )

    max_password_length = Integer(
        1024,
        config=True,
        help="Longer passwords are refused without asking PAM (hashing costs CPU).",
    )

    throttle = Instance(LoginThrottle, help="Failure bookkeeping, from the options above.")

    _untrusted_slots: asyncio.Semaphore | None = None

    @default("throttle")
    def _throttle_default(self) -> LoginThrottle:
        return LoginThrottle(
            ThrottleLimits(
                per_pair=self.failures_per_pair,
                per_address=self.failures_per_address,
                per_account=self.failures_per_account,
                window=self.failure_window,
                remember_success=self.remember_success_seconds,
                max_tracked=self.throttle_memory,
            )
        )

    @default("allow_existing_users")
    def _allow_existing_users_default(self) -> bool:
        return True

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        return False

    @default("username_pattern")
    def _username_pattern_default(self) -> str:
        return LINUX_USERNAME_PATTERN

    @default("username_regex")
    def _username_regex_default(self) -> re.Pattern | None:
        return re.compile(self.username_pattern) if self.username_pattern else None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._address_turns: dict[str, AddressTurn] = {}
        service_file = os.path.join(self.pam_service_dir, self.service)
        if not os.path.exists(service_file):
            self.log.error(
                "PAM service file %s is missing, so PAM falls back to its 'other' "
                "service. Run `pdal-hub install` to install it, or set "
                "PdalAuthenticator.service to an existing service.",
                service_file,
            )

    async def get_authenticated_user(self, handler, data):
        """The pipeline, behind the throttle, with every failure ending at one deadline."""
        if handler is None:
            return await super().get_authenticated_user(handler, data)
        deadline = time.monotonic() + self.failed_login_delay
        address = self.client_address(handler.request)
        problem = form_problem(data, self.max_username_length, self.max_password_length)
        if problem == "missing":
            self.log.warning("Failed login from %s: the form has no username or password", address)
            raise web.HTTPError(400, "The login form needs a username and a password.")
        username = data["username"][: self.max_username_length + 1]
        attempt = LoginAttempt()
        token = _attempt.set(attempt)
        attempted_at = time.monotonic()
        try:
            lock = self.throttle.attempt(username, address, attempted_at)
            if lock is not None:
                self._log_failure(address, username, f"{THROTTLED} ({lock.scope} paused)")
                await self._wait_until(deadline)
                raise web.HTTPError(429, lock.message())
            if problem is not None:
                attempt.reason = problem
                authenticated = None
            elif self.throttle.known_pair(username, address, attempted_at):
                authenticated = await super().get_authenticated_user(handler, data)
            else:
                async with self._untrusted_turn(address):
                    authenticated = await super().get_authenticated_user(handler, data)
        finally:
            _attempt.reset(token)
        if authenticated:
            self.throttle.succeeded(username, address, attempted_at, time.monotonic())
            return authenticated
        self._log_failure(address, username, attempt.reason)
        await self._wait_until(deadline)
        return None

    def client_address(self, request) -> str:
        """The client's address, from the proxy's X-Forwarded-For (see `client_address`)."""
        context = getattr(request.connection, "context", None)
        peer = getattr(context, "_orig_remote_ip", None) or request.remote_ip or "unknown"
        trusted = frozenset(getattr(self.parent, "trusted_downstream_ips", None) or ())
        return client_address(request.headers.get("X-Forwarded-For"), peer, trusted)

    def get_handlers(self, app) -> list[tuple[str, type]]:
        """The login form, with pdal-hub's handling of garbled forms."""
        return [("/login", PdalLoginHandler)]

    @contextlib.asynccontextmanager
    async def _untrusted_turn(self, address: str):
        """Wait, without a thread, for this address's turn at an untrusted PAM slot."""
        if self._untrusted_slots is None:
            self._untrusted_slots = asyncio.Semaphore(max(1, self.untrusted_pam_checks))
        turn = self._address_turns.setdefault(address, AddressTurn())
        turn.waiting += 1
        try:
            async with turn.lock, self._untrusted_slots:
                yield
        finally:
            turn.waiting -= 1
            if turn.waiting == 0:
                del self._address_turns[address]

    def _log_failure(self, address: str, username: str, reason: str) -> None:
        # Address first: fail2ban's filter anchors on it, before any user-chosen text.
        self.log.warning("Failed login from %s for %r: %s", address, log_safe(username), reason)

    @staticmethod
    async def _wait_until(deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def authenticate(self, handler, data):
        """PAM's answer; on failure, note for the log whether the account exists or is locked."""
        username = await super().authenticate(handler, data)
        if username is None:
            # The pipeline stops here, so the note is final.
            if self.lookup_account(data["username"]) is None:
                _note(UNKNOWN_ACCOUNT)
            elif linux_account_locked(self.read_shadow(), data["username"]):
                _note(LOCKED_ACCOUNT)
            else:
                _note(WRONG_PASSWORD)
        return username

    def read_shadow(self) -> str:
        """/etc/shadow (a method, so tests can patch it)."""
        return read_shadow()

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        """Allowed users only, and never a reserved or system account."""
        if not super().check_allowed(username, authentication):
            _note(NOT_ADDED)
            return False
        refusal = self.account_refusal(username)
        if refusal:
            _note(REFUSED_ACCOUNT)
            self.log.warning("Login refused for %s: %s", log_safe(username), refusal)
            return False
        return True

    async def add_user(self, user) -> None:
        """Refuse reserved, system and (unless created) missing accounts with a clear reason."""
        refusal = self.account_refusal(user.name)
        if refusal:
            raise ValueError(refusal)
        if not self.create_system_users and not self.system_user_exists(user):
            raise ValueError(missing_account_message(user.name))
        await super().add_user(user)
