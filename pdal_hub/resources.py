"""Files shipped inside the package: config, systemd unit, PAM service."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

DATA_FILES = {
    "config": "jupyterhub_config.py",
    "unit": "jupyterhub.service",
    "pam": "share/pam.d/pdal-hub",
    "fail2ban-filter": "share/fail2ban/filter.d/pdal-hub.conf",
    "fail2ban-jail": "share/fail2ban/jail.d/pdal-hub.conf",
    "lab-overrides": "share/lab/overrides.json",
    "r-profile": "share/r/Rprofile.site",
}


def data_path(kind: str) -> Path:
    """Path of a shipped file by kind (one of DATA_FILES) in the installed package."""
    if kind not in DATA_FILES:
        raise KeyError(f"unknown data file {kind!r}; known: {', '.join(DATA_FILES)}")
    resource = files("pdal_hub") / "data" / DATA_FILES[kind]
    with as_file(resource) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing from the installed pdal-hub package; reinstall it "
                "with pip install --force-reinstall pdal-hub (an editable install does "
                "not carry the data files)."
            )
        return path


def read_data(kind: str) -> str:
    """Text of a shipped file by kind."""
    return data_path(kind).read_text()
