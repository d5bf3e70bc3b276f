"""PAM login with an admin-managed allowlist.

Nobody logs in until an admin adds them (admin panel, REST API or the
``pdal-hub users`` command); reserved and system accounts never log in.
"""

from __future__ import annotations

import os
import re

from jupyterhub.auth import PAMAuthenticator
from traitlets import Unicode, default

from .accounts import LINUX_USERNAME_PATTERN, AccountPolicy


def log_safe(username: str, limit: int = 32) -> str:
    """`username` shortened for a log line, so hostile input cannot flood the log."""
    if len(username) <= limit:
        return username
    return f"{username[:limit // 2]}...({len(username)} chars)"


def missing_account_message(username: str) -> str:
    """What an admin is told when they add a name that has no Linux account."""
    return (
        f"There is no Linux account named {username!r}. Create it first "
        f"(pdal-hub users add {username}, or adduser {username}) and add the user "
        "again, or set PdalAuthenticator.create_system_users = True to let the hub "
        "create accounts."
    )


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
        service_file = os.path.join(self.pam_service_dir, self.service)
        if not os.path.exists(service_file):
            self.log.error(
                "PAM service file %s is missing, so PAM falls back to its 'other' "
                "service. Run `pdal-hub install` to install it, or set "
                "PdalAuthenticator.service to an existing service.",
                service_file,
            )

    def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        """Allowed users only, and never a reserved or system account."""
        if not super().check_allowed(username, authentication):
            return False
        refusal = self.account_refusal(username)
        if refusal:
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
