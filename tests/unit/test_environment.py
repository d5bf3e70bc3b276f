"""Which environment a server gets: table-driven tests of the pure functions."""

from __future__ import annotations

import pytest

from pdal_hub.environment import append_path_entries, path_with_venv_first, shared_library_env

LIBS = {
    "PYTHONPATH": ["{libs_root}/python"],
    "JJAVA_CLASSPATH": ["{libs_root}/java/*"],
    "R_LIBS_SITE": ["{libs_root}/r"],
}
DEFAULTS = {"R_LIBS_SITE": "/usr/local/lib/R/site-library:%S"}


@pytest.mark.parametrize(
    "existing, entries, expected",
    [
        (None, ["/a"], "/a"),
        ("", ["/a"], "/a"),
        ("/x", ["/a"], "/x:/a"),
        ("/x:/a", ["/a"], "/x:/a"),
        ("/x::/y:", ["/a", "/b"], "/x:/y:/a:/b"),
        ("/a", [], "/a"),
    ],
)
def test_append_path_entries(existing, entries, expected):
    assert append_path_entries(existing, entries) == expected


@pytest.mark.parametrize(
    "env, libs_root, expected",
    [
        (
            {},
            "/opt/jupyterhub-libs",
            {
                "PYTHONPATH": "/opt/jupyterhub-libs/python",
                "JJAVA_CLASSPATH": "/opt/jupyterhub-libs/java/*",
                "R_LIBS_SITE": "/usr/local/lib/R/site-library:%S:/opt/jupyterhub-libs/r",
            },
        ),
        (
            {"PYTHONPATH": "/srv/course", "R_LIBS_SITE": "/srv/r"},
            "/srv/libs/",
            {
                "PYTHONPATH": "/srv/course:/srv/libs/python",
                "JJAVA_CLASSPATH": "/srv/libs/java/*",
                "R_LIBS_SITE": "/srv/r:/srv/libs/r",
            },
        ),
        (
            {"PYTHONPATH": "/opt/jupyterhub-libs/python"},
            "/opt/jupyterhub-libs",
            {
                "PYTHONPATH": "/opt/jupyterhub-libs/python",
                "JJAVA_CLASSPATH": "/opt/jupyterhub-libs/java/*",
                "R_LIBS_SITE": "/usr/local/lib/R/site-library:%S:/opt/jupyterhub-libs/r",
            },
        ),
    ],
)
def test_shared_library_env(env, libs_root, expected):
    assert shared_library_env(env, libs_root, LIBS, DEFAULTS) == expected


def test_shared_library_env_leaves_input_alone():
    env = {"PYTHONPATH": "/x"}
    shared_library_env(env, "/libs", LIBS, DEFAULTS)
    assert env == {"PYTHONPATH": "/x"}


@pytest.mark.parametrize(
    "path, expected",
    [
        ("/usr/local/bin:/usr/bin:/bin", "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin"),
        ("/usr/bin:/opt/venv/bin", "/opt/venv/bin:/usr/bin"),
        ("", "/opt/venv/bin"),
    ],
)
def test_path_with_venv_first(path, expected):
    assert path_with_venv_first("/opt/venv/bin", path) == expected
