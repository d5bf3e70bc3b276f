"""pdal-hub-singleuser's deferred import and skipped yarn lookup keep behaviour intact."""

from __future__ import annotations

import sys

import pytest

from pdal_hub import singleuser

MODULE = "pdal_fake_iri_grammar"


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    """An importable module that records when its (expensive) body runs."""
    (tmp_path / f"{MODULE}.py").write_text(
        "import builtins\n"
        "builtins.pdal_fake_loads = getattr(builtins, 'pdal_fake_loads', 0) + 1\n"
        "def is_valid_syntax(term, value):\n"
        "    return value.startswith('http')\n"
        "GRAMMAR = 'compiled'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    monkeypatch.setattr(builtins, "pdal_fake_loads", 0, raising=False)
    yield builtins
    sys.modules.pop(MODULE, None)


def test_not_installed_is_left_alone():
    assert singleuser.defer_import("pdal_no_such_module_here") is False
    assert "pdal_no_such_module_here" not in sys.modules


def test_already_imported_is_left_alone():
    assert singleuser.defer_import("json") is False


def test_deferred_until_first_use_then_loaded_once(fake_module):
    assert singleuser.defer_import(MODULE) is True
    from pdal_fake_iri_grammar import is_valid_syntax  # what jsonschema does

    assert fake_module.pdal_fake_loads == 0
    assert is_valid_syntax("iri", "http://example.org/ä") is True
    assert is_valid_syntax("iri", "not an iri") is False
    assert fake_module.pdal_fake_loads == 1
    assert sys.modules[MODULE].GRAMMAR == "compiled"


@pytest.mark.parametrize("attribute, loads", [("__path__", 0), ("__file__", 0), ("GRAMMAR", 1)])
def test_only_real_attributes_load_the_module(fake_module, attribute, loads):
    singleuser.defer_import(MODULE)
    getattr(sys.modules[MODULE], attribute, None)
    assert fake_module.pdal_fake_loads == loads


def test_jsonschema_still_checks_iris_after_deferral(monkeypatch):
    pytest.importorskip("rfc3987_syntax")
    for name in [m for m in sys.modules if m.startswith(("jsonschema", "rfc3987_syntax"))]:
        monkeypatch.delitem(sys.modules, name)
    assert singleuser.defer_import() is True
    import jsonschema

    checker = jsonschema.FormatChecker()
    assert checker.conforms("http://example.org/ä", "iri")
    assert not checker.conforms("no scheme", "iri")


def test_yarn_lookup_is_skipped_only_inside():
    commands = pytest.importorskip("jupyterlab.commands")
    real = commands._yarn_config
    with singleuser.yarn_config_skipped():
        assert commands._yarn_config(None) == {"yarn config": {}, "npm config": {}}
    assert commands._yarn_config is real
