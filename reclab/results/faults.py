"""The fault catalogue of the fault matrix: each fault's name, what it does, and when it is on in a
run's open-loop window (the mechanisms are in `reclab.run.faults`)."""

from __future__ import annotations

SLOW_MS = 50.0
FAULT_START_S, FAULT_END_S = 1.5, 3.5  # the interval, from the start of the window
FAULTS = {
    "db-stall": "MongoDB process stopped (SIGSTOP), continued after",
    "db-slow": f"every MongoDB exchange {SLOW_MS:g} ms slower (delay proxy)",
    "db-refuse": "MongoDB connections refused and reset (delay proxy)",
    "cache-stall": "Valkey process stopped (SIGSTOP), continued after",
    "cache-refuse": "Valkey connections refused and reset (delay proxy)",
    "reload": "SIGUSR2 to the server: a new worker (the rule file read afresh) takes the socket, the old one drains",
}
