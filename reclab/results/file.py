"""results.jsonl: one JSON line per run (a `RunRecord`), appended atomically, readable while a bench runs.

What every run of a bench shares is written once (schema 3): before the first record of a bench, a
line `{"schema": 3, "kind": "bench", "bench_id": ..., ...}` holds its `BenchInfo`, and each record's
line names it (`"bench": "<bench_id>"`). A record takes the latest description of its bench above
it: a bench is described again only when its description changed (the records after read with the
new one). A writer first looks through what the file already holds (a resumed bench, another writer's
lines), so it does not describe a bench twice. Reading gives every record its `BenchInfo` back; lines
of schema 2 carry it inline, and still read (so does a record line that carries it inline).

A line is written with one `write` on an O_APPEND descriptor and fsynced (a description, then its
record, each in its own `write`), so a crash leaves whole lines only, and at most a last line without
its newline (torn mid-write: ignored). Every other line that is not a readable record is refused with
one line naming the file and the line: a line that is not JSON (or nested too deeply to read), a
schema version this reclab does not know (the version found and the version expected), a record that
does not fit the schema or whose fields do not fit its kind, a record whose bench has no description
above it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from reclab.errors import ResultsError
from reclab.results.record import READABLE_VERSIONS, SCHEMA_VERSION, BenchInfo, RunRecord, excerpt
from reclab.results.upgrade import upgrade

RESULTS_NAME = "results.jsonl"
BENCH_KIND = "bench"  # the kind of a line holding a bench's description (schema 3 on)
FIRST_BENCH_LINES = 3  # the schema of the first files with bench lines


class _Head(msgspec.Struct):
    """What the writer reads of a line to find the bench descriptions in a file."""

    schema: Any = None
    kind: Any = None
    bench_id: Any = None


_read_head = msgspec.json.Decoder(_Head)


class ResultsFile:
    """A results file, appended to one record at a time (each after its bench's description, once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._described: dict[str, bytes] = {}  # bench_id -> the latest line describing it in the file
        self._scanned = 0  # bytes of the file looked through for descriptions

    def append(self, record: RunRecord) -> None:
        """`record` as a line of its own, after its bench's description unless the file has it already."""
        if (misfit := record.misfit(complete=True)) is not None:
            raise ValueError(f"{self.path}: a record that does not fit its kind: {misfit}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._catch_up(fd)
            if self._described.get(record.bench.bench_id) != (description := bench_line(record.bench)):
                _write(fd, description)
            _write(fd, record_line(record))
        finally:
            os.close(fd)

    def _catch_up(self, fd: int) -> None:
        """The descriptions in what was appended to the file since it was last looked through (by this
        object or by any other writer); from the start again if it was cut short."""
        size = os.fstat(fd).st_size
        if size < self._scanned:
            self._described, self._scanned = {}, 0
        data = os.pread(fd, size - self._scanned, self._scanned)
        whole = data.rfind(b"\n") + 1  # a torn last line is not looked at
        for line in data[:whole].split(b"\n")[:-1]:
            if (bench_id := _described(line)) is not None:
                self._described[bench_id] = line + b"\n"
        self._scanned += whole

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
        self._described, self._scanned = {}, 0
        return aside

    def finished_keys(self) -> set[str]:
        return {r.run_key for r in self.read() if r.status == "ok"}


def _write(fd: int, line: bytes) -> None:
    os.write(fd, line)
    os.fsync(fd)


def bench_line(info: BenchInfo) -> bytes:
    """The line describing a bench."""
    return msgspec.json.encode({"schema": SCHEMA_VERSION, "kind": BENCH_KIND, **msgspec.to_builtins(info)}) + b"\n"


def record_line(record: RunRecord) -> bytes:
    """The line of a record: its bench named by its id."""
    data = msgspec.to_builtins(record)
    data["schema"], data["bench"] = SCHEMA_VERSION, record.bench.bench_id
    return msgspec.json.encode(data) + b"\n"


def _described(line: bytes) -> str | None:
    """The id of the bench a line describes, if it is a description. The writer compares a bench's
    description with the line as written: a line it cannot tell only makes it describe the bench again."""
    try:
        head = _read_head.decode(line)
    except (ValueError, RecursionError):  # msgspec's DecodeError too
        return None
    if head.kind != BENCH_KIND or type(head.schema) is not int or head.schema < FIRST_BENCH_LINES:
        return None
    return head.bench_id if isinstance(head.bench_id, str) else None


def read_results(path: Path) -> list[RunRecord]:
    """All complete records of a results file (a torn last line, if any, is ignored), each with its
    bench; [] if absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})") from None
    lines = data.split(b"\n")  # the last item: what follows the last newline (b"" unless a line was torn)
    benches: dict[str, BenchInfo] = {}  # bench_id -> its latest description so far
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
        version = _version(path, number, decoded)
        if version >= FIRST_BENCH_LINES and decoded.get("kind") == BENCH_KIND:
            info = _bench(path, number, decoded)
            benches[info.bench_id] = info
        else:
            records.append(_record(path, number, decoded, benches))
    return records


def _version(path: Path, number: int, data: Any) -> int:
    version = data.get("schema") if isinstance(data, dict) else None
    if type(version) is not int or version not in READABLE_VERSIONS:  # `true` and `1.0` are not version 1
        raise ResultsError(
            f"{path}:{number}: results of schema version {_shown(version)}; this reclab reads version {SCHEMA_VERSION} "
            f"(and older: {', '.join(str(v) for v in READABLE_VERSIONS if v != SCHEMA_VERSION)})"
        )
    return version


def _bench(path: Path, number: int, data: dict[str, Any]) -> BenchInfo:
    try:
        return msgspec.convert(data, BenchInfo, strict=False)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:  # msgspec's ValidationError too
        raise ResultsError(f"{path}:{number}: not a valid bench description ({excerpt(str(error))})") from None


def _record(path: Path, number: int, data: dict[str, Any], benches: dict[str, BenchInfo]) -> RunRecord:
    data = upgrade(data)
    bench = data.get("bench")
    if isinstance(bench, str) and data["schema"] >= FIRST_BENCH_LINES:
        if bench not in benches:
            raise ResultsError(
                f"{path}:{number}: its bench {_shown(bench)} has no description above it "
                f'(a line {{"schema": {SCHEMA_VERSION}, "kind": "{BENCH_KIND}", "bench_id": {_shown(bench)}, ...}})'
            )
        data = {**data, "bench": benches[bench]}
    try:
        record = msgspec.convert(data, RunRecord, strict=False)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:  # msgspec's ValidationError too
        raise ResultsError(f"{path}:{number}: not a valid run record ({excerpt(str(error))})") from None
    if (misfit := record.misfit(complete=True)) is not None:
        raise ResultsError(f"{path}:{number}: not a valid run record ({misfit})")
    return record


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
