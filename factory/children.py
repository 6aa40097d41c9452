"""Child processes that must not outlive the factory (mmdebstrap, cibuildwheel).

``die_with_parent`` is a ``preexec_fn``: Linux's ``PR_SET_PDEATHSIG`` (prctl(2)) sends the
child SIGKILL when the factory dies, even by SIGKILL, so a killed run leaves no build
writing into a temporary file the next run sweeps away.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
