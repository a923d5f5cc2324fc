"""The run loop every bench shares: its OUT/results.jsonl (refused when it already holds results,
unless resumed), the planned runs measured one after another under a progress line, each record
appended once measured, and the exit code (0 when every run succeeded, 3 when some failed). The
bench gives what differs: its planned records, how one is measured, and what follows each."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from reclab.analysis.compare import workload_of
from reclab.errors import UsageError
from reclab.results.file import ResultsFile
from reclab.results.record import RunRecord
from reclab.run.progress import Progress
from reclab.run.workload import PreparedWorkload
from workloads.spec import LoadModel

SOME_FAILED = 3  # the exit code of a bench some of whose runs (or searches) failed


class RunLoop:
    """One bench's results file and the runs it measures into it."""

    def __init__(self, out: Path, *, resume: bool = False, resumable: bool = True) -> None:
        """OUT/results.jsonl, which holds no results unless `resume` (a bench that cannot be resumed,
        `resumable` False, says only to choose another folder)."""
        self.results = ResultsFile(out / "results.jsonl")
        self.previous = self.results.read()
        if self.previous and not resume:
            how = "pass --resume to finish that bench, or choose another --out" if resumable else "choose another --out"
            raise UsageError(f"{self.results.path} already holds results: {how}")
        self.resume = resume
        self.done = {r.run_key for r in self.previous if r.status == "ok"}  # a resumed bench's finished runs
        self.planned = 0
        self.failures = 0
        self._progress: Progress | None = None

    def check_resumed(
        self, workload: PreparedWorkload, load: LoadModel, matrix: str, measure: str = "time", window: int | None = None
    ) -> None:
        """A bench is resumed only with what it started with (its workload, load and matrix, what it
        measures and over what instruction window); a torn last line is set aside, not appended to."""
        if not self.resume:
            return
        if aside := self.results.set_aside_torn_line():
            print(f"{self.results.path}: its last line was torn (a crash mid-write); set aside in {aside.name}")
        if not self.previous:
            return
        bench = self.previous[0].bench
        then = {**workload_of(bench), "matrix": bench.matrix, "measure": bench.measure, "window": bench.window_requests}
        now = {"spec": workload.spec.name, "stream": workload.stream.hash, "dataset": workload.dataset.content_hash(),
               "load": load, "matrix": matrix, "measure": measure, "window": window}  # fmt: skip
        differ = [
            name if name == "load" else f"{name} ({then[name]} then, {now[name]} now)" for name in now if now[name] != then[name]
        ]
        if differ:
            raise UsageError(f"--resume {self.results.path.parent}: this bench was started with another " + "; ".join(differ))

    def order_seed(self, given: int | None) -> int:
        """The seed of the run order: a resumed bench's own, else `given`, else drawn from the clock."""
        return self.previous[0].bench.seed.order if self.previous else given or int(time.time())

    def append(self, record: RunRecord) -> None:
        """A record besides the planned runs (the generator's ceiling, a warm-up run, a capacity search's)."""
        self.results.append(record)

    def run(
        self,
        planned: list[RunRecord],
        measure: Callable[[RunRecord], RunRecord],
        per_run_s: float,
        after: Callable[[RunRecord], None] | None = None,
    ) -> None:
        """Every planned run not finished already, in order: measured, appended, shown, then `after` it.
        `per_run_s`: one run's time, about, for the time left until the first is measured."""
        repeats = 1 + max((r.repeat for r in planned), default=0)
        self.planned += len(planned)
        self._progress = progress = Progress(len(planned), per_run_s)
        for record in planned:
            if record.run_key in self.done:
                progress.skip()
                continue
            progress.show(record.key, record.repeat, repeats)
            record = measure(record)
            self.failures += record.status != "ok"
            self.results.append(record)
            progress.done(record)
            if after is not None:
                after(record)

    def finish(self, what: str = "runs") -> int:
        """The closing lines (the time taken, the results and their failures); 0 when every run
        succeeded, 3 when some failed. `what` names the planned runs (runs, repeats)."""
        if self._progress is not None:
            self._progress.finish()
        print(f"results: {self.results.path} ({self.planned} {what}, {self.failures} failed)")
        return 0 if self.failures == 0 else SOME_FAILED
