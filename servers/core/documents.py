"""What the database sent back, in units that carry over to any MongoDB: documents returned, and
their bytes as BSON.

Every database call counts the documents it returned, by collection (`stats.count_documents`).
Their bytes are measured exactly (encoded as the batch array of a reply holds them) on every
`BYTES_SAMPLE`-th call to each collection, and a server's bytes are estimated collection by
collection: its documents times the bytes per document of the calls measured (`bytes_estimate`).
Documents of one collection are alike in size, so the estimate is close; encoding every reply again
would add a few percent of a request's CPU, more for the variants that read more documents, and
bias the comparison it is meant to inform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson

Document = dict[str, Any]
BYTES_SAMPLE = 8  # measure the bytes of every 8th call's documents, per collection
COLLECTIONS = ("items", "item_similar", "user_similar", "users", "events", "activity", "category_top", "other")
FIELDS = tuple(f"db_{what}_{name}" for name in COLLECTIONS for what in ("docs", "sampled_docs", "sampled_bytes"))


_calls = dict.fromkeys(COLLECTIONS, 0)  # this process's database calls so far, by collection (which to measure)


def stratum(collection: str) -> str:
    """The name a collection's counts are kept under."""
    return collection if collection in _calls else "other"


def measured_bytes(collection: str, found: list[Document] | Document | None) -> int | None:
    """The BSON bytes of one call's documents (a list, one, or none) if this call to `collection` is one
    to measure, else None."""
    name = stratum(collection)
    _calls[name] += 1
    if _calls[name] % BYTES_SAMPLE:
        return None
    documents = found if isinstance(found, list) else ([] if found is None else [found])
    return len(bson.encode({"d": documents}))


def bytes_estimate(counts: Mapping[str, float]) -> float | None:
    """BSON bytes of every document returned, from counts named as `FIELDS` are: each collection's
    documents times the bytes per document of its calls measured (None if no call was measured)."""
    total, measured = 0.0, False
    for name in COLLECTIONS:
        docs, sampled = counts.get(f"db_docs_{name}", 0.0), counts.get(f"db_sampled_docs_{name}", 0.0)
        if sampled:
            total += docs * counts.get(f"db_sampled_bytes_{name}", 0.0) / sampled
            measured = True
    return total if measured else None
