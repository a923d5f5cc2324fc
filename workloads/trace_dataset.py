"""A dataset in the lab's collections built from a log of interactions (`workloads.trace_log`).

Similarity is co-occurrence cosine over who interacted with what (a dislike counts as no
interaction): items i and j score |U_i & U_j| / sqrt(|U_i| |U_j|), users likewise over their items,
each list the top K by score (ties by id), computed as sparse matrix products (scipy), a block of
rows at a time so that memory stays bounded. Items' categories, names and prices come from an item
file when given; else categories are a spectral clustering of the item similarity graph (k-means on
the leading eigenvectors of its normalised adjacency, seeded), or one category for a catalogue too
small to cluster; names are the original ids and prices 0. The dataset's clock (`now`) is one second
after the last interaction; a user with fewer than COLD_EVENTS interactions is marked cold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.cluster.vq import kmeans2
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh

from workloads.dataset import KINDS, Dataset, DatasetParams
from workloads.trace_log import Interactions, TraceError

COLD_EVENTS = 3
BLOCK_CELLS = 8_000_000  # dense cells per block of similarity rows (float32: 32 MB)
MIN_CLUSTER_ITEMS = 40  # fewer items than this: one category


@dataclass(frozen=True)
class BuildSettings:
    similar_items: int = 20
    similar_users: int = 10
    category_top: int = 100
    seed: int = 1


@dataclass(frozen=True)
class ItemInfo:
    category: str | None = None
    name: str | None = None
    price: float | None = None


def read_items(path: Path) -> dict[str, ItemInfo]:
    """An item file: a header naming `item` and any of `category`, `name`, `price` (delimiter sniffed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TraceError(path, 0, f"cannot be read ({error.strerror})") from None
    try:
        delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "item" not in fields:
        raise TraceError(path, 1, "the header must name an `item` column (and any of category, name, price)")
    reader.fieldnames = fields
    items = {}
    for row in reader:
        price = row.get("price")
        try:
            value = float(price) if price not in (None, "") else None
        except ValueError:
            raise TraceError(path, reader.line_num, f"unparsable price: {price!r}") from None
        items[row["item"].strip()] = ItemInfo(row.get("category") or None, row.get("name") or None, value)
    return items


def build_dataset(
    log: Interactions, params: DatasetParams, settings: BuildSettings, info: dict[str, ItemInfo]
) -> tuple[Dataset, str]:
    """The dataset, and how its categories were made (for the import's summary)."""
    n_users, n_items = len(log.user_ids), len(log.item_ids)
    matrix = interaction_matrix(log, n_users, n_items)
    item_lists = top_similar(matrix.T.tocsr(), settings.similar_items)
    user_lists = top_similar(matrix, settings.similar_users)
    categories, how = _categories(log, info, item_lists, settings.seed)
    popularity = np.bincount(log.items - 1, minlength=n_items)
    counts = np.bincount(log.users - 1, minlength=n_users)
    items = []
    for index, original in enumerate(log.item_ids):
        given = info.get(original, ItemInfo())
        items.append({
            "_id": index + 1, "name": given.name or original, "category": categories[index],
            "price": round(given.price, 2) if given.price is not None else 0.0, "stock": 1, "seller": "trace", "status": "ok",
        })  # fmt: skip
    first_item = np.zeros(n_users, dtype=np.int64)
    first_item[log.users[::-1] - 1] = log.items[::-1] - 1  # each user's first item, for a segment
    users = [
        {"_id": u + 1, "name": original, "segment": categories[int(first_item[u])], "cold": bool(counts[u] < COLD_EVENTS)}
        for u, original in enumerate(log.user_ids)
    ]
    dataset = Dataset(
        params,
        {
            "items": items,
            "item_similar": [
                {"_id": i + 1, "similar": [{"item": j, "score": s} for j, s in lst]} for i, lst in enumerate(item_lists)
            ],
            "user_similar": [
                {"_id": u + 1, "similar": [{"user": v, "score": s} for v, s in lst]} for u, lst in enumerate(user_lists)
            ],
            "users": users,
            "events": _events(log),
            "category_top": _category_top(categories, popularity, settings.category_top),
            "meta": [{"_id": "dataset", "now": int(log.times.max()) + 1, "source": "trace", "categories": how}],
        },
    )
    dataset.collections["meta"][0]["hash"] = dataset.content_hash()
    return dataset, how


def interaction_matrix(log: Interactions, n_users: int, n_items: int) -> sparse.csr_matrix:
    """users x items, 1 where the user interacted with the item other than by disliking it."""
    keep = log.kinds != KINDS.index("dislike")
    ones = np.ones(int(keep.sum()), dtype=np.float32)
    matrix = sparse.csr_matrix((ones, (log.users[keep] - 1, log.items[keep] - 1)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def top_similar(rows: sparse.csr_matrix, k: int) -> list[list[tuple[int, float]]]:
    """For each row of `rows` (entities x features, 0/1), the k other rows with the highest cosine of
    co-occurrence, best first (ties by id), as (1-based id, score rounded to 4 places); scores of 0
    left out."""
    n = rows.shape[0]
    norms = np.sqrt(np.asarray(rows.sum(axis=1)).ravel()).astype(np.float32)
    norms[norms == 0] = 1.0
    columns = rows.T.tocsc()
    k = min(k, max(n - 1, 0))
    out: list[list[tuple[int, float]]] = []
    if k == 0:
        return [[] for _ in range(n)]
    block = max(1, BLOCK_CELLS // max(n, 1))
    for start in range(0, n, block):
        stop = min(n, start + block)
        counts = (rows[start:stop] @ columns).toarray()
        scores = counts / norms[start:stop, None] / norms[None, :]
        scores[np.arange(stop - start), np.arange(start, stop)] = 0.0  # not similar to itself
        # the k best by score, then by id: order by (-score, id) through a stable sort on ids
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (stop - start, 1))
        chosen = np.take_along_axis(scores, best, axis=1)
        order = np.lexsort((best, -chosen), axis=1)
        best, chosen = (
            np.take_along_axis(best, order, axis=1),
            np.round(np.take_along_axis(chosen, order, axis=1).astype(np.float64), 4),
        )
        for ids, values in zip(best.tolist(), chosen.tolist(), strict=True):
            out.append([(j + 1, v) for j, v in zip(ids, values, strict=True) if v > 0])
    return out


def _categories(
    log: Interactions, info: dict[str, ItemInfo], item_lists: list[list[tuple[int, float]]], seed: int
) -> tuple[list[str], str]:
    given = [info.get(original, ItemInfo()).category for original in log.item_ids]
    if info and all(given):
        return [str(c) for c in given], "from the item file"
    n = len(log.item_ids)
    if n < MIN_CLUSTER_ITEMS:
        return ["cat-001"] * n, f"one category ({n} items: too few to cluster)"
    clusters = int(np.clip(round(np.sqrt(n / 20)), 2, 50))
    rows = np.repeat(np.arange(n), [len(lst) for lst in item_lists])
    cols = np.array([j - 1 for lst in item_lists for j, _ in lst], dtype=np.int64)
    weights = np.array([s for lst in item_lists for _, s in lst], dtype=np.float64)
    graph = sparse.csr_matrix((weights, (rows, cols)), shape=(n, n))
    graph = graph.maximum(graph.T)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    try:
        _, vectors = eigsh(scale @ graph @ scale, k=clusters, which="LA", v0=np.random.default_rng(seed).random(n))
    except (ArpackNoConvergence, ArpackError, ValueError):
        return ["cat-001"] * n, "one category (the similarity graph's eigenvectors did not converge)"
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    _, labels = kmeans2(vectors / np.where(norms > 0, norms, 1.0), clusters, seed=seed, minit="++")
    names = [f"cat-{label + 1:03d}" for label in labels]
    fill = [g if g else names[i] for i, g in enumerate(given)]
    return fill, f"spectral clustering of the item similarity graph ({clusters} clusters)" + (
        ", where the item file gave none" if any(given) else ""
    )


def _events(log: Interactions) -> list[dict[str, Any]]:
    order = np.lexsort((log.kinds, log.items, log.times, log.users))  # by user, time, item, kind (as generated)
    kinds = np.array(KINDS)[log.kinds[order]].tolist()
    return [
        {"user": u, "item": i, "kind": k, "ts": t, "_id": n}
        for n, (u, i, k, t) in enumerate(
            zip(log.users[order].tolist(), log.items[order].tolist(), kinds, log.times[order].tolist(), strict=True), start=1
        )
    ]


def _category_top(categories: list[str], popularity: np.ndarray, count: int) -> list[dict[str, Any]]:
    """Each category's most interacted-with items (ties by id), and every item's under `*`."""
    ranked = np.lexsort((np.arange(len(popularity)), -popularity))
    by_category: dict[str, list[int]] = {}
    for index in ranked.tolist():
        by_category.setdefault(categories[index], []).append(index + 1)
    docs = [{"_id": c, "items": ids[:count]} for c, ids in sorted(by_category.items())]
    docs.append({"_id": "*", "items": [int(i) + 1 for i in ranked[:count]]})
    return docs
