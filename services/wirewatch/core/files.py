"""Files other processes read while we rewrite them: the feeds file, the local mode's endpoints."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomically(path: Path, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` so a reader sees the old content or the new, never a part: into a
    temporary file of its own beside it, then renamed over it (a rename is atomic within a file
    system, and two writers never share a temporary file). A rewritten file keeps its mode; a new
    one gets the usual mode (0666 less the umask, applied by the system), so a feeds file edited
    on the host stays readable by the services' container user. With ``mode``, the file has
    exactly that mode, from its first byte (``0o600``: a file only its owner may read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with os.fdopen(
            os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode),
            "w",
            encoding="utf-8",
        ) as out:
            if mode is not None:
                os.chmod(out.fileno(), mode)  # (the umask may have taken bits off)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(out.fileno(), path.stat().st_mode & 0o777)
            out.write(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
