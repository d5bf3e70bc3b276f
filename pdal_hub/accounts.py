"""Which Linux accounts may use the hub at all.

The decision is a pure function (`account_refusal`); `AccountPolicy` holds its
options and is mixed into both the authenticator and the spawner, so one
setting (``c.AccountPolicy.min_uid``) guards logins and spawns alike.
"""

from __future__ import annotations

import pwd

from traitlets import Integer, Set
from traitlets.config import Configurable

#: A name Linux `useradd` accepts with its default NAME_REGEX, at most 32 characters.
LINUX_USERNAME_PATTERN = r"^[a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?$"


def lookup_account(username: str) -> pwd.struct_passwd | None:
    """The passwd entry of `username`, or None if there is no such account."""
    try:
        return pwd.getpwnam(username)
    except KeyError:
        return None


def account_refusal(
    username: str,
    account: pwd.struct_passwd | None,
    min_uid: int,
    reserved_users: set[str] | frozenset[str],
) -> str | None:
    """Why `username` may never log in or run a server, or None if it may.

    A missing account is not refused here: whether it may be created is the
    authenticator's decision (``create_system_users``).
    """
    if username in reserved_users:
        return (
            f"{username!r} is a reserved account and may never log in to the hub "
            "or run a server (AccountPolicy.reserved_users)."
        )
    if account is not None and account.pw_uid < min_uid:
        return (
            f"{username!r} is a system account (uid {account.pw_uid} is below "
            f"AccountPolicy.min_uid = {min_uid}) and may never log in to the hub or "
            "run a server. Give the person a normal account (adduser NAME) instead."
        )
    return None


class AccountPolicy(Configurable):
    """Options shared by PdalAuthenticator and PdalSpawner: who may never use the hub."""

    min_uid = Integer(
        1000,
        config=True,
        help="""
        Lowest Linux user id that may log in and run a server.

        Accounts below it (root, daemon, www-data, ... on Debian and Ubuntu, where
        normal accounts start at 1000) are refused at login, when an admin tries to
        add them, and at spawn time, even if they are in the hub's database. Lower it
        only if your site's normal accounts start below 1000.
        """,
    )

    reserved_users = Set(
        {"root"},
        config=True,
        help="""
        Account names that may never log in or run a server, whatever their uid.

        Default: {"root"}. Add service or instructor-only accounts that must not get
        a JupyterLab server on this machine.
        """,
    )

    def lookup_account(self, username: str) -> pwd.struct_passwd | None:
        """The passwd entry of `username` (a method, so tests can patch it)."""
        return lookup_account(username)

    def account_refusal(self, username: str) -> str | None:
        """Why `username` may never use the hub, or None."""
        return account_refusal(
            username,
            self.lookup_account(username),
            self.min_uid,
            frozenset(self.reserved_users),
        )
