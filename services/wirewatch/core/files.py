"""Files other processes read while we rewrite them: the feeds file, the local mode's endpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader sees the old content or the new, never a part: into a
    temporary file of its own beside it, then renamed over it (a rename is atomic within a file
    system, and two writers never share a temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        # mkstemp makes it private (0600): give it the mode the file had, else the usual one,
        # so a feeds file edited on the host stays readable by the services' container user.
        os.chmod(handle, _mode_of(path))
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
