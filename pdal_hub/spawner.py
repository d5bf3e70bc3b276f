"""Spawner for the lab: private ~/notebooks and the shared-library environment.

The behaviour lives in mixins that assume only a local Linux account per user,
so SystemdSpawner-based or course-specific spawners can reuse them.
"""

from __future__ import annotations

import asyncio
import sysconfig

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import maybe_future
from traitlets import Dict, Integer, Unicode, default, validate
from traitlets.config import Configurable

from .accounts import AccountPolicy, lookup_account
from .environment import path_with_venv_first, shared_library_env
from .faststart import FastStartMixin
from .homedir import UnsafeHomePath, ensure_private_dir
from .resources import data_path

#: The default of `SharedLibrariesMixin.library_paths`, for subclasses that extend it.
DEFAULT_LIBRARY_PATHS = {
    "PYTHONPATH": ["{libs_root}/python"],
    "JJAVA_CLASSPATH": ["{libs_root}/java/*"],
    "CLASSPATH": ["{libs_root}/java/*"],
    "R_LIBS_SITE": ["{libs_root}/r"],
}


class SpawnRefused(Exception):
    """A server must not be started; the message is shown to the student."""


class SharedLibrariesMixin(Configurable):
    """Give every server the shared-library folders of the lab."""

    libs_root = Unicode(
        "/opt/jupyterhub-libs",
        config=True,
        help="""
        Root of the shared libraries every server sees: python/, java/ and r/ below it.

        Must be readable by students and writable by root only.
        """,
    )

    library_paths = Dict(
        DEFAULT_LIBRARY_PATHS,
        config=True,
        help="""
        Environment variables that get shared-library entries, and the entries.

        Each entry is appended to the variable's value (from `environment` or the
        default), never replacing it; "{libs_root}" stands for `libs_root`.
        JJAVA_CLASSPATH is what the JJava kernel reads (CLASSPATH is ignored by
        `java -jar` kernels); R_LIBS_SITE keeps each student's own R library
        (R_LIBS_USER) first and writable.
        """,
    )

    library_path_defaults = Dict(
        {"R_LIBS_SITE": "/usr/local/lib/R/site-library:%S"},
        config=True,
        help="""
        What a variable in `library_paths` means when it is not set, so appending
        to it keeps the language's own libraries. Default: Debian's R_LIBS_SITE.
        """,
    )

    r_site_profile = Unicode(
        config=True,
        help="""
        R site profile every R session of a server reads (set as R_PROFILE). The
        default, shipped with pdal-hub, reads the distribution's Rprofile.site and
        then creates the student's own R library (R_LIBS_USER) and puts it first, so
        install.packages() works for students while the shared R library stays
        read-only. Set to "" to leave R_PROFILE alone; an R_PROFILE set in
        `Spawner.environment` wins.
        """,
    )

    @default("r_site_profile")
    def _r_site_profile_default(self) -> str:
        try:
            return str(data_path("r-profile"))
        except FileNotFoundError as e:
            self.log.warning("Students' R sessions get no personal library: %s", e)
            return ""

    def get_env(self) -> dict:
        env = super().get_env()
        env.update(
            shared_library_env(env, self.libs_root, self.library_paths, self.library_path_defaults)
        )
        if self.r_site_profile:
            env.setdefault("R_PROFILE", self.r_site_profile)
        return env


class NotebooksDirMixin(Configurable):
    """Create ~/<notebooks> safely before each spawn and start the server there."""

    notebooks_dir_name = Unicode(
        "notebooks",
        config=True,
        help="""
        Folder in each student's home that the server opens in; created before the
        first spawn. A single name, not a path.
        """,
    )

    notebooks_dir_mode = Integer(
        0o700,
        config=True,
        help="""
        Permissions of a newly created notebooks folder. Default 0o700: students
        cannot read each other's notebooks. An existing folder is left as its
        owner keeps it.
        """,
    )

    @validate("notebooks_dir_name")
    def _check_dir_name(self, proposal) -> str:
        name = proposal["value"]
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(
                f"NotebooksDirMixin.notebooks_dir_name must be one folder name, not {name!r}"
            )
        return name

    @validate("notebooks_dir_mode")
    def _check_dir_mode(self, proposal) -> int:
        mode = proposal["value"]
        if mode & ~0o7777 or (mode & 0o700) != 0o700:
            raise ValueError(
                "NotebooksDirMixin.notebooks_dir_mode must be a permission mode that "
                f"lets the owner rwx, like 0o700; got {oct(mode)}"
            )
        return mode

    @default("notebook_dir")
    def _notebook_dir_default(self) -> str:
        return f"~/{self.notebooks_dir_name}"

    def lookup_account(self, username: str):
        """The passwd entry of `username` (a method, so tests can patch it)."""
        return lookup_account(username)

    def prepare_notebooks_dir(self) -> None:
        """Make sure the student's notebooks folder exists and is theirs."""
        account = self.lookup_account(self.user.name)
        if account is None:
            raise SpawnRefused(f"There is no Linux account for {self.user.name}.")
        try:
            prepared = ensure_private_dir(
                account.pw_dir,
                self.notebooks_dir_name,
                account.pw_uid,
                account.pw_gid,
                self.notebooks_dir_mode,
            )
        except UnsafeHomePath as e:
            self.log.error("Not starting %s's server: %s", self.user.name, e)
            raise SpawnRefused(str(e)) from None
        if prepared.created:
            self.log.info("Created %s for %s", prepared.path, self.user.name)

    async def run_pre_spawn_hook(self):
        await asyncio.to_thread(self.prepare_notebooks_dir)
        return await maybe_future(super().run_pre_spawn_hook())


class AccountGuardMixin(AccountPolicy):
    """Never start a server for a reserved or system account, whatever the database says."""

    async def run_pre_spawn_hook(self):
        refusal = self.account_refusal(self.user.name)
        if refusal:
            self.log.error("Not starting a server: %s", refusal)
            raise SpawnRefused(refusal)
        return await maybe_future(super().run_pre_spawn_hook())


class PdalSpawner(
    FastStartMixin,
    AccountGuardMixin,
    NotebooksDirMixin,
    SharedLibrariesMixin,
    LocalProcessSpawner,
):
    """JupyterLab in a private ~/notebooks with the shared libraries, as a local process.

    Servers start a few at a time, in line (FastStartMixin).
    """

    @default("default_url")
    def _default_url_default(self) -> str:
        return "/lab"

    server_path = Unicode(
        "/usr/local/bin:/usr/bin:/bin",
        config=True,
        help="""
        PATH of students' servers, kernels and terminals, after the bin folder of the
        hub's venv, which always comes first (so `jupyter`, `pip` and the venv's
        kernels are found). The hub's own PATH is not passed on: it can name folders
        students cannot enter. A PATH in `Spawner.environment` replaces this value.
        """,
    )

    @default("env_keep")
    def _env_keep_default(self) -> list[str]:
        # PATH, PYTHONPATH, VIRTUAL_ENV and friends describe the hub's own process:
        # a student's server must not inherit them.
        return ["JUPYTERHUB_SINGLEUSER_APP", "LANG", "LC_ALL"]

    def get_env(self) -> dict:
        env = super().get_env()
        env["PATH"] = path_with_venv_first(
            sysconfig.get_path("scripts"), env.get("PATH") or self.server_path
        )
        return env


__all__ = [
    "DEFAULT_LIBRARY_PATHS",
    "AccountGuardMixin",
    "NotebooksDirMixin",
    "PdalSpawner",
    "SharedLibrariesMixin",
    "SpawnRefused",
]
