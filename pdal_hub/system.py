"""Wrappers around OS calls shared by the admin command's modules, so tests can patch them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing text output."""
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def create_private_file(path: Path, text: str) -> None:
    """Create `path` holding `text`, root-only (0600): never overwrite, never follow a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
