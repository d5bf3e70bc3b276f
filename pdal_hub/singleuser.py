"""`pdal-hub-singleuser`: jupyterhub-singleuser without two start-up costs no student uses.

Measured on every server start (see bench/), before the student sees anything:

- jsonschema (imported through jupyter_events) imports ``rfc3987_syntax`` when it
  is installed, which compiles an Earley grammar for IRIs: about 1 s of CPU. Here
  that module is a stand-in whose functions load the real module on first use, so
  IRI checks still work, only later and only if ever needed.
- ``jupyterlab.labapp`` computes the JupyterLab version when imported, and on the
  way asks yarn for the npm registry by running node (about 1 s, 0.5 s of CPU)
  whenever node is installed, as it is on every hub (the proxy needs it). The
  version does not depend on the registry, so that one lookup is skipped; every
  later one (extension builds) asks yarn as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from contextlib import contextmanager

DEFERRED_MODULE = "rfc3987_syntax"


def _load_real(name: str) -> types.ModuleType:
    """Swap the stand-in for the real module (once) and return the real one."""
    loaded = sys.modules.get(name)
    if loaded is not None and not isinstance(loaded, DeferredModule):
        return loaded
    stand_in = sys.modules.pop(name, None)
    try:
        return importlib.import_module(name)
    except BaseException:
        if stand_in is not None:
            sys.modules[name] = stand_in
        raise


class DeferredModule(types.ModuleType):
    """Stand-in for a module: any attribute other than `is_valid_syntax` loads the real one."""

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            # the import system probes __path__ and friends: that is not a use
            raise AttributeError(attribute)
        return getattr(_load_real(self.__name__), attribute)


def defer_import(name: str = DEFERRED_MODULE) -> bool:
    """Put a stand-in for `name` in sys.modules; False if it is not installed or loaded already."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return False
    stand_in = DeferredModule(name)

    def is_valid_syntax(term: str, value: str) -> bool:
        return _load_real(name).is_valid_syntax(term, value)

    stand_in.is_valid_syntax = is_valid_syntax
    sys.modules[name] = stand_in
    return True


def _empty_yarn_config(logger) -> dict:
    return {"yarn config": {}, "npm config": {}}


@contextmanager
def yarn_config_skipped():
    """While inside, JupyterLab's yarn configuration lookup answers "nothing configured"."""
    try:
        import jupyterlab.commands as commands
    except ImportError:
        yield
        return
    real = getattr(commands, "_yarn_config", None)
    if real is None:
        yield
        return
    commands._yarn_config = _empty_yarn_config
    try:
        yield
    finally:
        commands._yarn_config = real


def import_labapp() -> None:
    """Import jupyterlab.labapp (if installed) without its import-time yarn lookup."""
    with yarn_config_skipped():
        try:
            importlib.import_module("jupyterlab.labapp")
        except ImportError:
            pass


def main() -> int:
    defer_import()
    import_labapp()
    from jupyterhub.singleuser import main as singleuser_main

    sys.argv[0] = "jupyterhub-singleuser"
    return singleuser_main()


if __name__ == "__main__":
    sys.exit(main())
