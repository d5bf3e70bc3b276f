"""Which environment a student's server gets: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def append_path_entries(existing: str | None, entries: Iterable[str], sep: str = ":") -> str:
    """`existing` with each of `entries` appended once, keeping the order of both.

    Empty entries are dropped: in a search path they would mean the current folder.
    """
    parts = [p for p in (existing or "").split(sep) if p]
    for entry in entries:
        if entry and entry not in parts:
            parts.append(entry)
    return sep.join(parts)


def shared_library_env(
    env: Mapping[str, str],
    libs_root: str,
    library_paths: Mapping[str, Iterable[str]],
    unset_defaults: Mapping[str, str],
) -> dict[str, str]:
    """The variables of `env` that change so a server sees the shared libraries.

    `library_paths` maps a variable to entries (``{libs_root}`` is replaced) that
    are appended to its current value. A variable absent from `env` starts from
    `unset_defaults` (what the language itself uses when the variable is unset),
    so setting it does not hide the distribution's own libraries.
    """
    changed = {}
    for name, templates in library_paths.items():
        entries = [t.format(libs_root=libs_root.rstrip("/")) for t in templates]
        current = env.get(name, unset_defaults.get(name))
        changed[name] = append_path_entries(current, entries)
    return changed


def path_with_venv_first(venv_bin: str, path: str) -> str:
    """A server's PATH: the hub venv's `venv_bin` first, then `path` without repeats."""
    return append_path_entries(venv_bin, path.split(":"))
