"""PdalSpawner's glue inside JupyterHub's mock hub: environment and pre-spawn chain."""

from __future__ import annotations

import os
import pwd
import re
import sysconfig
from pathlib import Path

import pytest
from jupyterhub.tests.utils import add_user

from pdal_hub.spawner import PdalSpawner, SpawnRefused

DOCS = Path(__file__).parents[2] / "docs" / "extending.md"


def fake_passwd(name: str, uid: int, home: str) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, uid, "", home, "/bin/bash"))


@pytest.fixture
def accounts(monkeypatch, tmp_path):
    """Pretend alice (uid of this process, home in tmp) and a system account exist."""
    table = {
        "alice": fake_passwd("alice", os.getuid() or 4242, str(tmp_path / "alice")),
        "svc": fake_passwd("svc", 12, str(tmp_path / "svc")),
    }

    def getpwnam(name):
        return table[name]

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    return table


@pytest.fixture
async def spawner_for(hub_app):
    async def make(name: str, config: dict | None = None, spawner_class=PdalSpawner):
        app = await hub_app({"JupyterHub": {"spawner_class": spawner_class}, **(config or {})})
        return add_user(app.db, app, name=name).spawner

    return make


async def test_env_appends_libraries_and_drops_hub_venv(spawner_for, accounts, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/opt/jupyterhub-venv/lib/python3/site-packages")
    monkeypatch.setenv("VIRTUAL_ENV", "/opt/jupyterhub-venv")
    monkeypatch.setenv("PATH", "/root/.local/bin:/usr/sbin:/usr/bin")
    spawner = await spawner_for(
        "alice", {"Spawner": {"environment": {"PYTHONPATH": "/srv/course"}}}
    )
    env = spawner.get_env()
    assert env["PYTHONPATH"] == "/srv/course:/opt/jupyterhub-libs/python"
    assert env["JJAVA_CLASSPATH"] == "/opt/jupyterhub-libs/java/*"
    assert env["CLASSPATH"] == "/opt/jupyterhub-libs/java/*"
    assert env["R_LIBS_SITE"] == "/usr/local/lib/R/site-library:%S:/opt/jupyterhub-libs/r"
    assert "VIRTUAL_ENV" not in env
    venv_bin = sysconfig.get_path("scripts")
    assert env["PATH"] == f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"
    assert spawner.cmd == [f"{venv_bin}/pdal-hub-singleuser"]
    assert os.access(spawner.cmd[0], os.X_OK)
    assert env["HOME"] == accounts["alice"].pw_dir
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert env["JUPYTERHUB_ROOT_DIR"] == "~/notebooks"


async def test_pre_spawn_prepares_notebooks_then_runs_site_hook(spawner_for, accounts):
    home = Path(accounts["alice"].pw_dir)
    home.mkdir()
    if os.getuid() == 0:
        os.chown(home, accounts["alice"].pw_uid, accounts["alice"].pw_gid)
    seen = []

    async def site_hook(spawner):
        seen.append((home / "notebooks").is_dir())

    spawner = await spawner_for("alice", {"Spawner": {"pre_spawn_hook": site_hook}})
    await spawner.run_pre_spawn_hook()
    assert seen == [True]
    assert (home / "notebooks").stat().st_uid == accounts["alice"].pw_uid


async def test_system_account_never_spawns_and_home_is_untouched(spawner_for, accounts):
    Path(accounts["svc"].pw_dir).mkdir()
    spawner = await spawner_for("svc")
    with pytest.raises(SpawnRefused, match="system account"):
        await spawner.run_pre_spawn_hook()
    assert not (Path(accounts["svc"].pw_dir) / "notebooks").exists()


async def test_symlinked_notebooks_fails_the_spawn_with_a_clear_message(
    spawner_for, accounts, tmp_path
):
    home = Path(accounts["alice"].pw_dir)
    home.mkdir()
    if os.getuid() == 0:
        os.chown(home, accounts["alice"].pw_uid, accounts["alice"].pw_gid)
    (home / "notebooks").symlink_to(tmp_path)
    spawner = await spawner_for("alice")
    with pytest.raises(SpawnRefused, match=r"mv .*notebooks .*notebooks\.old"):
        await spawner.run_pre_spawn_hook()


@pytest.mark.parametrize(
    "trait, value",
    [("notebooks_dir_name", "a/b"), ("notebooks_dir_name", ".."), ("notebooks_dir_mode", 0o055)],
)
def test_bad_options_name_the_trait(trait, value):
    with pytest.raises(Exception, match="NotebooksDirMixin." + trait):
        PdalSpawner(**{trait: value})


async def test_extending_doc_example_works(spawner_for, accounts):
    code = re.search(r"```python\n(from traitlets import default.*?)```", DOCS.read_text(), re.S)
    namespace: dict = {}
    exec(code.group(1), namespace)
    spawner = await spawner_for("alice", spawner_class=namespace["DataScienceSpawner"])
    env = spawner.get_env()
    assert env["PYTHONPATH"] == "/srv/ds-libs/python:/srv/ds-libs/datasets"
    assert env["JULIA_LOAD_PATH"] == "/srv/ds-libs/julia"
    assert env["JUPYTERHUB_ROOT_DIR"] == "~/ds"
