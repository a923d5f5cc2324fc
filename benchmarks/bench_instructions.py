"""Server instructions per request of the key server variants (every variant of the one-factor-at-a-time
matrix), counted under valgrind by one `reclab bench --measure instructions` run: each server's
instructions over the same fixed slice of the stream, in the same order. Their spread run to run is a
fraction of a percent, so the history is flat when the code did not change and a 2% step stands out,
which server CPU time (5-15% run to run on a shared machine) cannot show. Needs valgrind; without it
every figure is NaN (asv shows it as missing).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from benchmarks.bench_server import VARIANTS, run_reclab
from reclab.analysis.summary import INSTRUCTIONS_PER_REQUEST
from reclab.results.file import read_results


class KeyInstructions:
    timeout = 900
    params: ClassVar[list[str]] = VARIANTS
    param_names: ClassVar[list[str]] = ["variant"]

    def setup_cache(self) -> dict[str, float]:
        if shutil.which("valgrind") is None:
            return {}
        out = Path(tempfile.mkdtemp(prefix="reclab-asv-instructions-")) / "bench"
        run_reclab(["bench", "--measure", "instructions", "--quick", "--repeats", "1", "--out", str(out)], self.timeout - 60)
        records = read_results(out / "results.jsonl") if (out / "results.jsonl").is_file() else []
        return {
            r.key: value for r in records if r.kind == "run" and r.ok and (value := INSTRUCTIONS_PER_REQUEST.of(r)) is not None
        }

    def track_instructions_per_request(self, counts: dict[str, float], variant: str) -> float:
        return counts.get(variant, float("nan"))

    track_instructions_per_request.unit = "instructions"  # type: ignore[attr-defined]
