"""One needless cost of the embedded engine, taken away: mongoeco (4.11) compares a single inserted
document's `_id` with the `_id` of every document already in the collection (a Python loop: ~0.5 s per
insert into the default world's 184,633 events), whatever the id's type. The loop exists for numeric
ids, which MongoDB holds equal across types (1, 1.0, Int64(1)); an ObjectId equals only itself, and
that is checked by the engine's keyed lookup just before. So for an ObjectId (the id every driver gives
a new document) the loop is skipped; numeric, string and other ids keep it. Measured on the default
world: a one-event write took 506 ms before, about 1 ms after; inserts of several documents never
made the scan.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId


def skip_needless_id_scan() -> None:
    """Patch the engine in this process (the embedded MongoDB's own); idempotent."""
    from mongoeco.engines.memory import MemoryEngine

    original = MemoryEngine._ensure_unique_indexes
    if getattr(original, "skips_object_id_scan", False):
        return

    def ensure_unique_indexes(self: Any, db_name: str, coll_name: str, candidate: Any, **options: Any) -> None:
        if options.get("scan_payload_id") and isinstance(candidate.get("_id"), ObjectId):
            options["scan_payload_id"] = False
        original(self, db_name, coll_name, candidate, **options)

    ensure_unique_indexes.skips_object_id_scan = True  # type: ignore[attr-defined]
    MemoryEngine._ensure_unique_indexes = ensure_unique_indexes  # type: ignore[method-assign]
