"""A dataset in the lab's collections built from a log of interactions (`workloads.trace_log`).

Similarity is co-occurrence cosine over who interacted with what (a dislike counts as no
interaction): items i and j score |U_i & U_j| / sqrt(|U_i| |U_j|), users likewise over their items,
each list the top K by score (ties by id), computed as sparse matrix products (scipy), a block of
rows at a time so that memory stays bounded.

Items' categories, names and prices come from an item file when given: a header naming `item` and
any of `category`, `name`, `price` (delimiter sniffed), or a MovieLens item file, told by its form
(pipe-separated, no header, lines ending in a run of 0/1 genre flags: id|title|release date|video
release date|URL|flags), read as the title for the name, the first genre flagged for the category
(MovieLens 100k's genre names for 19 flags, else genre-NN) and a price of 0. An item file is
decoded with the log's encoding, else as Latin-1. Without an item file, categories are a spectral
clustering of the item similarity graph (k-means on the leading eigenvectors of its normalised
adjacency, seeded), or one category for a catalogue too small to cluster; names are the original
ids and prices 0. The dataset's clock (`now`) is one second after the last interaction; a user
with fewer than COLD_EVENTS interactions is marked cold. Events keep the log's rating (`"rating"`,
a float) when it has ratings; the servers read events without it.
"""

from __future__ import annotations

import csv
import math
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
MOVIELENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


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


def read_items(path: Path, encoding: str = "utf-8") -> dict[str, ItemInfo]:
    """An item file: a header naming `item` and any of `category`, `name`, `price` (delimiter sniffed),
    or a MovieLens item file (see `_movielens_flags`). Decoded with `encoding`, else as Latin-1."""
    lines = [line.removesuffix("\r") for line in _item_text(path, encoding).split("\n")]  # as the file numbers them
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise TraceError(path, 0, "is empty")
    flags = _movielens_flags(first)
    return _read_movielens(path, lines, flags, len(first.split("|"))) if flags else _read_with_header(path, lines)


def _item_text(path: Path, encoding: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise TraceError(path, 0, f"cannot be read ({error.strerror or error})") from None
    if b"\x00" in data[:65536]:
        raise TraceError(path, 0, "is not a text file (it holds NUL bytes)")
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def _movielens_flags(line: str) -> int:
    """How many genre flags a MovieLens item line ends in (0: not that form): pipe-separated, no
    header, an id and a title, then a trailing run of at least two 0/1 flags."""
    cells = line.split("|")
    flags = 0
    for cell in reversed(cells):
        if cell.strip() not in ("0", "1"):
            break
        flags += 1
    return flags if flags >= 2 and len(cells) - flags >= 2 else 0


def _read_movielens(path: Path, lines: list[str], flags: int, width: int) -> dict[str, ItemInfo]:
    """`id|title|release date|video release date|URL|flag|...` (`width` fields, the last `flags` of
    them genre flags): the name the title, the category the first genre flagged (MovieLens 100k's
    names for 19 flags, else genre-NN), the price 0."""
    genres = MOVIELENS_GENRES if flags == len(MOVIELENS_GENRES) else tuple(f"genre-{n:02d}" for n in range(1, flags + 1))
    items = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = line.split("|")
        if len(cells) != width:
            raise TraceError(path, number, f"wrong field count: {len(cells)}, expected {width} (a MovieLens item file)")
        marks = [cell.strip() for cell in cells[width - flags :]]
        if not cells[0].strip() or any(mark not in ("0", "1") for mark in marks):
            raise TraceError(path, number, "an empty id, or a genre flag other than 0/1 (a MovieLens item file)")
        category = next((genre for genre, mark in zip(genres, marks, strict=True) if mark == "1"), None)
        items[cells[0].strip()] = ItemInfo(category, cells[1].strip() or None, 0.0)
    return items


def _read_with_header(path: Path, lines: list[str]) -> dict[str, ItemInfo]:
    sample = "\n".join(lines[:200])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader((line if line.strip() else "" for line in lines), delimiter=delimiter)  # blank: skipped
    try:
        fields = [f.strip().lower() for f in reader.fieldnames or []]
    except csv.Error as error:
        raise TraceError(path, 1, f"an unreadable header ({error})") from None
    if "item" not in fields:
        raise TraceError(path, 1, "the header must name an `item` column (and any of category, name, price), "
                         "or the file be a MovieLens item file (id|title|date|video date|URL|0/1 genre flags)")  # fmt: skip
    reader.fieldnames = fields
    items = {}
    try:
        for row in reader:
            item, info = _item_row(path, reader.line_num, row)
            items[item] = info
    except csv.Error as error:
        raise TraceError(path, reader.line_num, f"not a delimited line ({error})") from None
    return items


def _item_row(path: Path, line: int, row: dict[str, Any]) -> tuple[str, ItemInfo]:
    item = (row.get("item") or "").strip()
    if not item:
        raise TraceError(path, line, "no item id")
    price = (row.get("price") or "").strip()
    try:
        value = float(price) if price else None
    except ValueError:
        value = math.nan
    if value is not None and not math.isfinite(value):
        raise TraceError(path, line, f"unparsable price: {price!r}")
    return item, ItemInfo(row.get("category") or None, row.get("name") or None, value)


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
    """One document per interaction, by user, time, item, kind (as generated); with the rating when
    the log has ratings."""
    order = np.lexsort((log.kinds, log.items, log.times, log.users))
    kinds = np.array(KINDS)[log.kinds[order]].tolist()
    events = [
        {"user": u, "item": i, "kind": k, "ts": t, "_id": n}
        for n, (u, i, k, t) in enumerate(
            zip(log.users[order].tolist(), log.items[order].tolist(), kinds, log.times[order].tolist(), strict=True), start=1
        )
    ]
    if log.has_ratings:
        for event, rating in zip(events, log.ratings[order].tolist(), strict=True):
            event["rating"] = rating
    return events


def _category_top(categories: list[str], popularity: np.ndarray, count: int) -> list[dict[str, Any]]:
    """Each category's most interacted-with items (ties by id), and every item's under `*`."""
    ranked = np.lexsort((np.arange(len(popularity)), -popularity))
    by_category: dict[str, list[int]] = {}
    for index in ranked.tolist():
        by_category.setdefault(categories[index], []).append(index + 1)
    docs = [{"_id": c, "items": ids[:count]} for c, ids in sorted(by_category.items())]
    docs.append({"_id": "*", "items": [int(i) + 1 for i in ranked[:count]]})
    return docs
