"""Unit tests run in a scratch working directory: the mock hub writes state files there."""

import pytest


@pytest.fixture(autouse=True)
def _scratch_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
