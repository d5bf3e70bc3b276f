"""`pdal-hub install`: the lab manual's setup steps as idempotent functions.

Each step returns a list of lines saying what it changed (or, on a dry run,
would change); running it again on an installed machine changes nothing.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import string
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .accounts import account_refusal, lookup_account
from .hubapi import CLI_TOKEN_NAME
from .resources import read_data
from .system import create_private_file, run

LIBRARY_KINDS = ("python", "java", "r")


class InstallError(Exception):
    """A step cannot be done; the message says what to do."""


@dataclass(frozen=True)
class InstallPaths:
    """Where `pdal-hub install` puts things; defaults are the lab manual's paths."""

    venv: Path = Path(sys.prefix)
    config_dir: Path = Path("/etc/jupyterhub")
    libs_root: Path = Path("/opt/jupyterhub-libs")
    state_dir: Path = Path("/var/lib/pdal-hub")
    unit_dir: Path = Path("/etc/systemd/system")
    pam_dir: Path = Path("/etc/pam.d")

    @property
    def config_file(self) -> Path:
        return self.config_dir / "jupyterhub_config.py"

    @property
    def drop_in_dir(self) -> Path:
        return self.config_dir / "jupyterhub_config.d"

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / "jupyterhub.service"


def systemd_is_running() -> bool:
    """True when PID 1 is systemd (so units can be enabled and started)."""
    return os.path.isdir("/run/systemd/system")


def render_unit(paths: InstallPaths) -> str:
    """The shipped systemd unit with this installation's paths."""
    unit = read_data("unit")
    unit = unit.replace("/opt/jupyterhub-venv", str(paths.venv))
    unit = unit.replace("/etc/jupyterhub/jupyterhub_config.py", str(paths.config_file))
    return unit.replace("/var/lib/pdal-hub", str(paths.state_dir)).replace(
        "StateDirectory=pdal-hub", f"StateDirectory={paths.state_dir.name}"
    )


def write_file(path: Path, text: str, mode: int, dry_run: bool) -> list[str]:
    """Put `text` at `path`; an existing different file is kept as a backup first."""
    if path.is_symlink():
        raise InstallError(f"{path} is a symbolic link; remove it and run install again.")
    if path.exists() and path.read_text() == text:
        if stat.S_IMODE(path.stat().st_mode) != mode and not dry_run:
            path.chmod(mode)
        return []
    actions = []
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        actions.append(f"kept your edited {path} as {backup}")
        if not dry_run:
            shutil.copy2(path, backup)
    actions.append(f"wrote {path}")
    if not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.pdal-hub-new")
        tmp.write_text(text)
        tmp.chmod(mode)
        os.replace(tmp, path)
    return actions


def ensure_dir(path: Path, mode: int, dry_run: bool) -> list[str]:
    """A root-owned directory with exactly `mode`."""
    if path.is_symlink():
        raise InstallError(f"{path} is a symbolic link; remove it and run install again.")
    if not path.exists():
        if not dry_run:
            path.mkdir(parents=True, mode=mode)
            os.chown(path, 0, 0)
            path.chmod(mode)
        return [f"created {path} (mode {oct(mode)})"]
    st = path.stat()
    if stat.S_IMODE(st.st_mode) != mode or st.st_uid != 0:
        if not dry_run:
            os.chown(path, 0, 0)
            path.chmod(mode)
        return [f"set {path} to root, mode {oct(mode)}"]
    return []


def install_libs_root(paths: InstallPaths, dry_run: bool) -> list[str]:
    """/opt/jupyterhub-libs/{python,java,r}: readable by all, writable by root only."""
    actions = ensure_dir(paths.libs_root, 0o755, dry_run)
    for kind in LIBRARY_KINDS:
        actions += ensure_dir(paths.libs_root / kind, 0o755, dry_run)
    return actions


def install_proxy(dry_run: bool) -> list[str]:
    """configurable-http-proxy from npm, unless it is already on PATH."""
    if shutil.which("configurable-http-proxy"):
        return []
    if not shutil.which("npm"):
        raise InstallError(
            "configurable-http-proxy is missing and npm is not installed. "
            "Install Node.js first: apt-get install -y nodejs npm"
        )
    if not dry_run:
        result = run(["npm", "install", "-g", "configurable-http-proxy"])
        if result.returncode:
            raise InstallError(
                "npm install -g configurable-http-proxy failed:\n" + result.stderr[-2000:]
            )
    return ["installed configurable-http-proxy with npm"]


def install_config(paths: InstallPaths, dry_run: bool) -> list[str]:
    """The shipped jupyterhub_config.py, its drop-in directory and the state directory."""
    actions = ensure_dir(paths.config_dir, 0o755, dry_run)
    actions += write_file(paths.config_file, read_data("config"), 0o644, dry_run)
    actions += ensure_dir(paths.drop_in_dir, 0o755, dry_run)
    actions += ensure_dir(paths.state_dir, 0o700, dry_run)
    if paths.state_dir != InstallPaths.state_dir:
        text = (
            "# Written by pdal-hub install: hub state lives here.\n"
            f'c.JupyterHub.cookie_secret_file = "{paths.state_dir}/jupyterhub_cookie_secret"\n'
            f'c.JupyterHub.db_url = "sqlite:///{paths.state_dir}/jupyterhub.sqlite"\n'
            f'c.ConfigurableHTTPProxy.pid_file = "{paths.state_dir}/jupyterhub-proxy.pid"\n'
        )
        actions += write_file(paths.drop_in_dir / "00-state.py", text, 0o644, dry_run)
    if paths.libs_root != InstallPaths.libs_root:
        text = f'c.SharedLibrariesMixin.libs_root = "{paths.libs_root}"\n'
        actions += write_file(paths.drop_in_dir / "00-libs.py", text, 0o644, dry_run)
    return actions


def install_pam_service(paths: InstallPaths, dry_run: bool) -> list[str]:
    """/etc/pam.d/pdal-hub: pam_unix without the blocking failure delay."""
    return write_file(paths.pam_dir / "pdal-hub", read_data("pam"), 0o644, dry_run)


def install_unit(paths: InstallPaths, dry_run: bool) -> list[str]:
    """The systemd unit; enabled when systemd runs and the unit is in systemd's folder."""
    actions = write_file(paths.unit_file, render_unit(paths), 0o644, dry_run)
    if systemd_manages(paths) and not dry_run:
        run(["systemctl", "daemon-reload"], check=True)
        run(["systemctl", "enable", "jupyterhub.service"], check=True)
        actions.append("enabled jupyterhub.service")
    return actions


def systemd_manages(paths: InstallPaths) -> bool:
    """True when systemd runs and will find the unit where install writes it."""
    return systemd_is_running() and paths.unit_dir == InstallPaths.unit_dir


def start_or_restart_unit(changed: bool) -> str:
    """Start the hub's unit, or restart it when it runs and something changed."""
    active = run(["systemctl", "is-active", "--quiet", "jupyterhub.service"]).returncode == 0
    if active and not changed:
        return "jupyterhub.service is running"
    verb = "restart" if active else "start"
    result = run(["systemctl", verb, "jupyterhub.service"])
    if result.returncode:
        raise InstallError(
            f"systemctl {verb} jupyterhub failed: {result.stderr.strip()}. "
            "See why with: journalctl -u jupyterhub -n 50, then run pdal-hub doctor"
        )
    return f"{verb}ed jupyterhub.service" if verb == "start" else "restarted jupyterhub.service"


def create_secret_file(path: Path, text: str, dry_run: bool) -> list[str]:
    """A root-only (0600) file with `text`, unless it exists; an existing one is made 0600."""
    if path.is_symlink():
        raise InstallError(f"{path} is a symbolic link; remove it and run install again.")
    if path.exists():
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != 0:
            if not dry_run:
                os.chown(path, 0, 0)
                path.chmod(0o600)
            return [f"made {path} root-only (0600)"]
        return []
    if not dry_run:
        create_private_file(path, text)
    return [f"created {path} (0600)"]


def install_state(paths: InstallPaths, dry_run: bool) -> list[str]:
    """The hub's secrets in its root-only state directory: cookie secret, database, CLI token.

    The database starts as an empty file so SQLite keeps its 0600 mode; the CLI
    token is what `pdal-hub users` and `pdal-hub status` use (see hubapi).
    """
    actions = ensure_dir(paths.state_dir, 0o700, dry_run)
    actions += create_secret_file(
        paths.state_dir / "jupyterhub_cookie_secret", secrets.token_hex(32) + "\n", dry_run
    )
    actions += create_secret_file(paths.state_dir / "jupyterhub.sqlite", "", dry_run)
    actions += create_secret_file(
        paths.state_dir / CLI_TOKEN_NAME, secrets.token_hex(32) + "\n", dry_run
    )
    return actions


def existing_backups(paths: InstallPaths) -> list[Path]:
    """Backups earlier runs made of edited files (kept, never removed by install)."""
    backups = []
    for directory, name in [
        (paths.config_dir, paths.config_file.name),
        (paths.drop_in_dir, "00-*.py"),
        (paths.unit_dir, paths.unit_file.name),
        (paths.pam_dir, "pdal-hub"),
    ]:
        if directory.is_dir():
            backups += sorted(directory.glob(f"{name}.bak-*"))
    return backups


def generate_password(length: int = 14) -> str:
    """A password that is easy to read out: letters and digits, no look-alikes."""
    alphabet = [ch for ch in string.ascii_letters + string.digits if ch not in "Il1O0o"]
    return "".join(secrets.choice(alphabet) for _ in range(length))


def set_password(username: str, password: str) -> None:
    """Set a Linux account's password with chpasswd (password never on a command line)."""
    result = run(["chpasswd"], input=f"{username}:{password}\n")
    if result.returncode:
        raise InstallError(f"chpasswd failed for {username}: {result.stderr.strip()}")


def admin_refusal(
    admin: str, account: pwd.struct_passwd | None, create: bool, min_uid: int = 1000
) -> str | None:
    """Why `admin` cannot be the hub's first admin, or None."""
    refusal = account_refusal(admin, account, min_uid, frozenset({"root"}))
    if refusal:
        return f"Cannot make {admin!r} the hub's admin: {refusal}"
    if account is None and not create:
        return (
            f"There is no Linux account {admin!r}. Create it (adduser {admin}) or "
            "run install with --create-admin to have one made with a generated password."
        )
    return None


def install_admin(
    paths: InstallPaths, admin: str, create: bool, dry_run: bool
) -> tuple[list[str], str | None]:
    """Make `admin` the hub's admin, creating the account if asked; returns (actions, password)."""
    account = lookup_account(admin)
    refusal = admin_refusal(admin, account, create)
    if refusal:
        raise InstallError(refusal)
    actions, password = [], None
    if account is None:
        actions.append(f"created Linux account {admin}")
        if not dry_run:
            result = run(["useradd", "--create-home", "--shell", "/bin/bash", admin])
            if result.returncode:
                raise InstallError(f"useradd {admin} failed: {result.stderr.strip()}")
            password = generate_password()
            set_password(admin, password)
    text = (
        "# Written by pdal-hub install: the hub's first admin.\n"
        f"c.Authenticator.admin_users = {{{admin!r}}}\n"
    )
    actions += write_file(paths.drop_in_dir / "00-admin.py", text, 0o644, dry_run)
    return actions, password


def install_all(
    paths: InstallPaths,
    admin: str,
    create_admin: bool,
    dry_run: bool,
    progress: Callable[[str], None] = lambda step: None,
) -> tuple[list[str], str | None]:
    """Every step, in order. Returns (actions, generated admin password or None).

    `progress` is told the name of each step as it starts (some take minutes),
    then each change it made, indented by two spaces.
    """
    from .stack import install_stack  # stack builds on this module's helpers

    refusal = admin_refusal(admin, lookup_account(admin), create_admin)
    if refusal:
        raise InstallError(refusal + " Nothing was changed.")
    steps: list[tuple[str, Callable[[], list[str]]]] = [
        ("shared-library root", lambda: install_libs_root(paths, dry_run)),
        (
            "kernels and shared libraries (downloads; may take minutes)",
            lambda: install_stack(paths, dry_run),
        ),
        ("configurable-http-proxy", lambda: install_proxy(dry_run)),
        ("hub config and drop-in directory", lambda: install_config(paths, dry_run)),
        ("hub state: cookie secret, database, CLI token", lambda: install_state(paths, dry_run)),
        ("PAM service", lambda: install_pam_service(paths, dry_run)),
        ("systemd unit", lambda: install_unit(paths, dry_run)),
    ]
    actions = []
    for name, step in steps:
        progress(name)
        done = step()
        for line in done:
            progress(f"  {line}")
        actions += done
    progress("first admin")
    admin_actions, password = install_admin(paths, admin, create_admin, dry_run)
    for line in admin_actions:
        progress(f"  {line}")
    return actions + admin_actions, password
