"""results.jsonl: one JSON line per run, appended atomically, readable while a bench is running.

Each line is a complete record (see `reclab.bench`); a line is written with one `write` on an
O_APPEND descriptor and fsynced, so a crash leaves whole lines only. `finished_keys` lets a bench
resume: runs that ended `ok` are skipped, failed ones are tried again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def run_key(record: dict[str, Any]) -> str:
    return f"{record['kind']}:{record.get('key', '')}#{record.get('repeat', 0)}"


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        return read_results(self.path)

    def finished_keys(self) -> set[str]:
        return {run_key(r) for r in self.read() if r.get("status") == "ok"}


def read_results(path: Path) -> list[dict[str, Any]]:
    """All complete records of a results file (a torn last line, if any, is ignored)."""
    if not path.exists():
        return []
    records = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON record ({error})") from None
    return records
