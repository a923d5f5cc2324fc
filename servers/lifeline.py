"""Children that die with their parent: a parent-death signal set in each child before it runs (Linux
`prctl(PR_SET_PDEATHSIG)`), so that even a lab killed with SIGKILL leaves no process behind. Used by
the lab for every process it starts, and by the server zygote for every server it forks."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None  # loaded once, before any fork


def set_parent_death_signal(parent: int, signum: int = signal.SIGKILL) -> None:
    """In a child: receive `signum` when the parent dies; exit now if it is already gone."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def die_with_parent(parent: int) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child dies with `parent` (the lab)."""
    return lambda: set_parent_death_signal(parent)


def run_forked(parent: int, body: Callable[[], object]) -> NoReturn:
    """In a child just forked from `parent`: die with it, run `body`, and leave with its exit code
    (never returning into the parent's code)."""
    code = 1
    try:
        set_parent_death_signal(parent)
        body()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
