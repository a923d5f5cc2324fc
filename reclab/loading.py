"""Loads a generated dataset into a real MongoDB through the driver, in batches, with indexes.

Loading is skipped when the database already holds the same dataset (same content hash).
"""

from __future__ import annotations

from pymongo import MongoClient

from servers.core.drivers import CONNECT_TIMEOUT_MS
from servers.core.runtime import DB_NAME
from workloads.dataset import INDEXES, Dataset

BATCH = 1000


def load_into(uri: str, dataset: Dataset, db_name: str = DB_NAME) -> bool:
    """Make the database at `uri` hold `dataset`; returns True if it had to load."""
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS, connectTimeoutMS=CONNECT_TIMEOUT_MS)
    try:
        db = client[db_name]
        meta = db["meta"].find_one({"_id": "dataset"})
        if meta is not None and meta.get("hash") == dataset.content_hash():
            return False
        db["meta"].drop()  # first: an interrupted load must not look like a complete one
        for name, docs in dataset.collections.items():
            db[name].drop()
            for start in range(0, len(docs), BATCH):
                db[name].insert_many(docs[start : start + BATCH], ordered=False)
        for name, fields in INDEXES.items():
            for field_name in fields:
                db[name].create_index(field_name)
        return True
    finally:
        client.close()
