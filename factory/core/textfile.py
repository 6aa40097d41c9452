"""Writing a text file so that a reader sees the old file or the new one, never half of it.

Domain modules (the typed artifacts) and the infrastructure (``atomic``) both write this
way; this is the one implementation, stdlib only.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from .errors import OutputError

_FULL = (errno.ENOSPC, errno.EDQUOT)


def output_error(path: Path, err: OSError) -> OutputError:
    """The one-line ``OutputError`` for a failed write of ``path``: "no space left" on a full
    disk or quota, else the OS's reason."""
    if err.errno in _FULL:
        return OutputError(f"no space left writing {path}", "free space on that filesystem or write the output elsewhere")
    return OutputError(f"cannot write {path}: {err.strerror}", "check the path and its permissions")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary sibling of ``path`` (``.<name>.tmp-*``), flush it
    to disk and rename it over ``path`` (``os.replace``). Creates the parent directory.
    Raises ``OutputError`` (``output_error``) and leaves no temporary file behind."""
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise
