"""results.jsonl: one JSON line per run (a `RunRecord`), appended atomically, readable while a bench runs.

A line is written with one `write` on an O_APPEND descriptor and fsynced, so a crash leaves whole
lines only, and at most a last line without its newline (torn mid-write: ignored). Every other line
that is not a readable record is refused with one line naming the file and the line: a line that is
not JSON (or nested too deeply to read), a schema version this reclab does not know (the version
found and the version expected), a record that does not fit the schema.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from reclab.errors import ResultsError
from reclab.results.record import READABLE_VERSIONS, SCHEMA_VERSION, RunRecord, excerpt
from reclab.results.upgrade import upgrade

RESULTS_NAME = "results.jsonl"


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: RunRecord) -> None:
        line = msgspec.json.encode(record) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[RunRecord]:
        return read_results(self.path)

    def set_aside_torn_line(self) -> Path | None:
        """A crash mid-write leaves a last line without its newline: move it to a file of its own
        (returned) and cut the results back to their last whole line, so the next record is not glued
        onto it."""
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return None
        whole = data.rfind(b"\n") + 1
        aside = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}")
        aside.write_bytes(data[whole:])
        with open(self.path, "r+b") as results:
            results.truncate(whole)
            os.fsync(results.fileno())
        return aside

    def finished_keys(self) -> set[str]:
        return {r.run_key for r in self.read() if r.status == "ok"}


def read_results(path: Path) -> list[RunRecord]:
    """All complete records of a results file (a torn last line, if any, is ignored); [] if absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})") from None
    lines = data.split(b"\n")  # the last item: what follows the last newline (b"" unless a line was torn)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            decoded: Any = msgspec.json.decode(line)
        except (msgspec.DecodeError, RecursionError) as error:
            if number == len(lines):
                break  # no newline after it: a line torn by a crash mid-write
            why = "nested too deeply" if isinstance(error, RecursionError) else "not JSON"
            raise ResultsError(f"{path}:{number}: not a JSON record ({why})") from None
        records.append(_record(path, number, decoded))
    return records


def _record(path: Path, number: int, data: Any) -> RunRecord:
    version = data.get("schema") if isinstance(data, dict) else None
    if type(version) is not int or version not in READABLE_VERSIONS:  # `true` and `1.0` are not version 1
        raise ResultsError(
            f"{path}:{number}: results of schema version {_shown(version)}; this reclab reads version {SCHEMA_VERSION} "
            f"(and older: {', '.join(str(v) for v in READABLE_VERSIONS if v != SCHEMA_VERSION)})"
        )
    try:
        return msgspec.convert(upgrade(data), RunRecord, strict=False)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:  # msgspec's ValidationError too
        raise ResultsError(f"{path}:{number}: not a valid run record ({excerpt(str(error))})") from None


def _shown(value: Any) -> str:
    """A JSON value as the file spells it, cut short."""
    try:
        return excerpt(msgspec.json.encode(value).decode())
    except (TypeError, RecursionError):
        return "?"


def read_folder(folder: Path) -> list[RunRecord]:
    """The records of a result folder of `reclab bench`; a missing or empty one is a ResultsError."""
    path = folder / RESULTS_NAME
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such result folder")
    if not path.exists():
        raise ResultsError(f"{path}: no results file (is {folder} a folder written by `reclab bench`?)")
    records = read_results(path)
    if not records:
        raise ResultsError(f"{path}: holds no results")
    return records
