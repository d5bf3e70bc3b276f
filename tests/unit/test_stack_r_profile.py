"""Students' own R library: the spawner points R_PROFILE at pdal-hub's Rprofile.site."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pdal_hub.resources import data_path
from pdal_hub.spawner import SharedLibrariesMixin


class BaseSpawner:
    def __init__(self, environment: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.environment = environment or {}

    def get_env(self) -> dict:
        return {"PATH": "/usr/bin:/bin", **self.environment}


class LibrariesOnly(SharedLibrariesMixin, BaseSpawner):
    pass


@pytest.mark.parametrize(
    "config, r_profile",
    [
        ({}, str(data_path("r-profile"))),
        ({"r_site_profile": "/etc/lab/Rprofile"}, "/etc/lab/Rprofile"),
        ({"r_site_profile": ""}, None),
        ({"environment": {"R_PROFILE": "/srv/course.R"}}, "/srv/course.R"),
    ],
)
def test_r_profile_in_server_environment(config, r_profile):
    env = LibrariesOnly(**config).get_env()
    assert env.get("R_PROFILE") == r_profile
    assert env["R_LIBS_SITE"].endswith(":/opt/jupyterhub-libs/r")


@pytest.mark.skipif(
    not shutil.which("R"), reason="R is not installed (apt-get install r-base-core)"
)
def test_shipped_profile_creates_personal_library_first_and_keeps_site_profile(tmp_path):
    user_lib = tmp_path / "home" / "R" / "library"
    shared = tmp_path / "shared"
    shared.mkdir()
    result = subprocess.run(
        ["R", "--slave", "-e", 'cat(.libPaths(), sep="\\n"); cat(getOption("repos")[["CRAN"]])'],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path / "home"),
            "R_PROFILE": str(data_path("r-profile")),
            "R_LIBS_USER": str(user_lib),
            "R_LIBS_SITE": f"/usr/local/lib/R/site-library:%S:{shared}",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    paths = result.stdout.splitlines()
    assert user_lib.is_dir()
    assert paths[0] == str(user_lib)
    assert str(shared) in paths
    # Debian's own Rprofile.site (which sets the CRAN mirror) still ran
    assert paths[-1].startswith("https://")
