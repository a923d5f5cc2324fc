"""Records a running server with py-spy: a flamegraph (SVG) and a speedscope profile, idle frames off."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from reclab.host.processes import ProcessGroup
from reclab.results.config import key_slug

FORMATS = (("speedscope", ".speedscope.json"), ("flamegraph", ".svg"))
FOLDED = (("raw", ".folded"),)  # collapsed stacks, one per line: what a differential flamegraph is drawn from


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy not found (it is a dependency of reclab: reinstall the project)")
    return found


def record_profiles(
    group: ProcessGroup,
    pid: int,
    key: str,
    out_dir: Path,
    seconds: float,
    rate: int,
    formats: tuple[tuple[str, str], ...] = FORMATS,
) -> list[Path]:
    """One recording per format, one after the other, named after the variant's key."""
    written = []
    for fmt, suffix in formats:
        target = out_dir / f"{key_slug(key)}{suffix}"
        argv = [py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--duration", str(int(seconds)),
                "--format", fmt, "--output", str(target)]  # fmt: skip
        recorder = group.start(f"py-spy {fmt}", argv, out_dir / "run" / "py-spy.log")
        recorder.popen.wait(timeout=seconds + 60)
        group.stop(recorder)
        if not target.exists():
            raise RuntimeError(f"py-spy wrote no {fmt} output; see {out_dir / 'run' / 'py-spy.log'}")
        written.append(target)
    return written
