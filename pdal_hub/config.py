"""Helpers for etc/jupyterhub/jupyterhub_config.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from traitlets.config import Config


class StateDirError(Exception):
    """The hub's state directory is unsafe or cannot be made."""


def config_drop_ins(directory: Path) -> list[Path]:
    """The ``*.py`` files of `directory` in name order (none if it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.py") if p.is_file())


def state_paths(c: Config) -> list[str]:
    """The files of the hub's state that the config names."""
    paths = [c.JupyterHub.cookie_secret_file, c.ConfigurableHTTPProxy.pid_file]
    db_url = c.JupyterHub.db_url
    if isinstance(db_url, str) and db_url.startswith("sqlite:///"):
        paths.append(db_url[len("sqlite:///") :])
    return [p for p in paths if isinstance(p, str) and p]


def ensure_state_dir(c: Config) -> None:
    """Create the directories holding the hub's state, root-only (0700).

    Refuses to start the hub when one exists but others can read or write it:
    the cookie secret and database in it let anyone impersonate any user.
    """
    for directory in sorted({os.path.dirname(p) for p in state_paths(c)}):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise StateDirError(
                f"The hub's state directory {directory} must belong to the user running "
                f"the hub and be private (mode 0700), but has owner uid {st.st_uid} and "
                f"mode {oct(stat.S_IMODE(st.st_mode))}. Fix it with: "
                f"chown root:root {directory} && chmod 0700 {directory}"
            )
    for path in state_paths(c):
        if path.endswith(".sqlite"):
            make_private_file(path)


def make_private_file(path: str) -> None:
    """Create `path` empty, or make it, 0600 (never following a link).

    SQLite keeps the mode of an existing database file and gives its journal
    the same mode, so the database with every user's tokens is private from
    its first byte instead of the process umask's 0644.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
