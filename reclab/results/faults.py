"""The fault catalogue of the fault matrix: each fault's name, what it does, and when it is on in a
run's open-loop window (the mechanisms are in `reclab.run.faults`); and what the write probe that runs
beside each fault run's load saw (`WriteTally`, from `reclab.run.write_probe`)."""

from __future__ import annotations

import msgspec

SLOW_MS = 50.0
FAULT_START_S, FAULT_END_S = 1.5, 3.5  # the interval, from the start of the window
FAULTS = {
    "db-stall": "MongoDB process stopped (SIGSTOP), continued after",
    "db-slow": f"every MongoDB exchange {SLOW_MS:g} ms slower (delay proxy)",
    "db-refuse": "MongoDB connections refused and reset (delay proxy)",
    "cache-stall": "Valkey process stopped (SIGSTOP), continued after",
    "cache-refuse": "Valkey connections refused and reset (delay proxy)",
    "reload": "a graceful restart (SIGUSR2 to the master; uvicorn and Granian: SIGHUP): a new worker (the rule file read "
    "afresh) takes the socket, the old one drains",
}
PROBE_RATE = 20.0  # the write probe's events per second
PROBE_TIMEOUT_S = 3.0  # each of its writes, connection included (well above the server's deadline)
LOST_WRITES_FLAG = "fault:lost_writes"  # a run where an acknowledged write is not in the database
UNCHECKED_WRITES_FLAG = "fault:writes_unchecked"  # a run whose acknowledged writes could not be looked up


class WriteTally(msgspec.Struct, kw_only=True, frozen=True):
    """The write probe's events during one fault run: each sent is acknowledged (200), refused (by
    HTTP status) or failed (no answer: timeout, connection error); `lost` counts acknowledged ones not
    found in the database afterwards (must be 0; None: the lookup failed); `stored_unacknowledged`
    counts ones stored although the probe was not told so (a retry would have written them twice)."""

    sent: int
    acknowledged: int
    refused: dict[str, int] = {}
    failed: int = 0
    lost: int | None = 0
    stored_unacknowledged: int = 0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())
