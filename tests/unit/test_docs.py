"""docs/configuration.md names every option pdal-hub defines, and each has help."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdal_hub.accounts import AccountPolicy
from pdal_hub.auth import PdalAuthenticator
from pdal_hub.spawner import NotebooksDirMixin, PdalSpawner, SharedLibrariesMixin

DOC = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
PDAL_CLASSES = [
    AccountPolicy,
    PdalAuthenticator,
    NotebooksDirMixin,
    SharedLibrariesMixin,
    PdalSpawner,
]


def own_options():
    for cls in PDAL_CLASSES:
        for name, trait in cls.class_own_traits(config=True).items():
            yield cls.__name__, name, trait


@pytest.mark.parametrize("owner, name, trait", list(own_options()))
def test_option_is_documented_with_help(owner, name, trait):
    assert f"{owner}.{name}" in DOC, f"docs/configuration.md does not describe {owner}.{name}"
    assert len(trait.help.strip()) > 20, f"{owner}.{name} has no real help text"
