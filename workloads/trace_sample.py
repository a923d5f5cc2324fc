"""Seeded logs of interactions (for the tests, the README's example and the import's benchmarks), in
one of two shapes (`SHAPES`):

shop (the default): users, some far busier than others (Pareto weights, alpha 2), with two
favourite categories rate mostly items of those, popular items more often (Zipf), over `days` days;
ids are strings (`u00042`, `sku-0017`) and timestamps ISO 8601 or unix seconds, so an import has
something to remap and parse. With `items_out`, an item file (item, category, name, price) for the
same catalogue.

movielens: shaped like MovieLens 100k and written like its `u.data`: tab-separated
`user item rating timestamp`, no header, integer ids, unix seconds, in time order. 943 users, 1,682
items and 100,000 lines (`lines` scales users with it, items with its square root). Each user rates
at least 20 items, each at most once: 20 plus a gamma draw (shape 0.6; mean 106, median about 65,
the busiest several hundred); items by a Zipf-Mandelbrot popularity (weight 1 / (rank + 130) ** 2.5: a few hundred ratings
for the top items, a few for hundreds of others); ratings 1..5 (about 6, 11, 27, 34, 21 %) from the
item's quality, the user's leniency and noise; timestamps in sessions over the 7 months of MovieLens
100k (1997-09-20 .. 1998-04-22), about half of them in the same second as the one before
(`workloads.dataset.session_offsets`). With `items_out`, an item file like its `u.item`: Latin-1,
pipe-separated, no header, `id|title|release date||IMDb URL|` and 19 genre flags (one to three set),
titles `Name, The (1996)`, some with a Latin-1 letter.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import math
import random
from bisect import bisect_right
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from urllib.parse import quote

from workloads.dataset import session_offsets

START = 1_735_689_600  # 2025-01-01T00:00:00Z
SHAPES = ("shop", "movielens")
SHOP_LINES = 5000

# MovieLens 100k's shape.
ML_USERS, ML_ITEMS, ML_LINES = 943, 1682, 100_000
ML_FIRST, ML_LAST = 874_724_710, 893_286_638  # its first and last timestamps
ML_MIN_RATINGS = 20  # every user rated at least 20 movies
ML_GAMMA = 0.6  # the shape of a user's ratings beyond the minimum
ML_POPULARITY = (130.0, 2.5)  # Zipf-Mandelbrot: weight 1 / (rank + 130) ** 2.5 (rank from 0, of 1,682 items)
ML_RATINGS = (0.06, 0.11, 0.27, 0.34, 0.21)  # share of each rating 1..5
ML_SESSION_EVENTS, ML_SAME_SECOND = 20, 0.53
ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
ML_GENRE_WEIGHTS = (0, 5, 3, 1, 2, 10, 2, 1, 14, 1, 1, 2, 1, 1, 5, 2, 5, 1, 1)  # never "unknown"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TITLE_WORDS = (
    "Night", "River", "Summer", "Stranger", "Heart", "City", "Road", "Secret", "Dream", "Island", "Winter", "Story",
    "Father", "Mirror", "Garden", "Storm", "Angel", "Ghost", "Highway", "Kingdom", "Letter", "Shadow", "Wedding", "Train",
)  # fmt: skip
TITLE_ADJECTIVES = ("Last", "Lost", "Long", "Silent", "Wild", "Blue", "Little", "Dark", "Golden", "Broken", "Quiet", "Big")
LATIN1_WORDS = ("Café", "Fiancée", "Señorita", "Noël", "Über", "Déjà Vu", "Château", "Garçon")  # some titles have one


def write_sample(
    out: Path, lines: int = 0, *, shape: str = "shop", seed: int = 7, users: int = 0, items: int = 0, days: int = 30,
    iso: bool = True, items_out: Path | None = None,
) -> int:  # fmt: skip
    """Write a sample log of `shape` (`lines` of it; 0: the shape's default, 5,000 for a shop and
    100,000 for MovieLens) and, with `items_out`, its item file; the number of lines written. `users`,
    `items`, `days` and `iso` shape a shop's log."""
    if shape not in SHAPES:
        raise ValueError(f"shape {shape!r}: must be one of {', '.join(SHAPES)}")
    if shape == "movielens":
        lines = lines or ML_LINES
        write_movielens(out, lines, seed=seed, items_out=items_out)
    else:
        lines = lines or SHOP_LINES
        _write_shop(out, lines, seed=seed, users=users, items=items, days=days, iso=iso, items_out=items_out)
    return lines


def _write_shop(
    out: Path, lines: int, *, seed: int, users: int, items: int, days: int, iso: bool, items_out: Path | None
) -> None:  # fmt: skip
    """A shop-shaped log (module docstring)."""
    rng = random.Random(seed)
    users = users or max(20, lines // 20)
    items = items or max(40, lines // 50)
    categories = max(2, min(40, items // 25))
    category_of = [rng.randrange(categories) for _ in range(items)]
    by_category: list[list[int]] = [[] for _ in range(categories)]
    for item, category in enumerate(category_of):
        by_category[category].append(item)
    weights = [[1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))] for pool in by_category]
    favourites = [rng.sample(range(categories), 2) for _ in range(users)]
    activity = list(itertools.accumulate(rng.paretovariate(2.0) for _ in range(users)))  # a few users far busier
    moments = sorted(rng.randrange(days * 86_400) for _ in range(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "rating", "timestamp"])
        for moment in moments:
            user = rng.choices(range(users), cum_weights=activity)[0]
            category = rng.choice(favourites[user]) if rng.random() < 0.85 else rng.randrange(categories)
            pool = by_category[category] or [rng.randrange(items)]
            item = rng.choices(pool, weights[category] or None)[0]
            liked = category in favourites[user]
            rating = max(1, min(5, round(rng.gauss(4.0 if liked else 2.5, 1.0))))
            ts = START + moment
            stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if iso else str(ts)
            writer.writerow([f"u{user:05d}", f"sku-{item:04d}", rating, stamp])
    if items_out is not None:
        with open(items_out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item", "category", "name", "price"])
            for item in range(items):
                name = f"product {item}"
                writer.writerow([f"sku-{item:04d}", f"cat-{category_of[item] + 1:03d}", name, round(rng.uniform(0.5, 200.0), 2)])


def write_movielens(out: Path, lines: int = ML_LINES, *, seed: int = 7, items_out: Path | None = None) -> None:
    """A log shaped like MovieLens 100k, written like its `u.data` (module docstring); `lines` of it."""
    rng = random.Random(seed)
    users, items = _movielens_sizes(lines)
    rows = sorted(_movielens_rows(rng, _capped(rng, _history_counts(rng, lines, users), items // 2), items))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="ascii", newline="\n") as handle:
        handle.writelines(f"{user}\t{item}\t{rating}\t{ts}\n" for ts, user, item, rating in rows)
    if items_out is not None:
        write_movielens_items(items_out, items, seed=seed)


def _movielens_rows(rng: random.Random, counts: list[int], items: int) -> list[tuple[int, int, int, int]]:
    """(timestamp, user, item, rating) of each rating, `counts[u - 1]` of them for user u."""
    ranked = list(range(1, items + 1))
    rng.shuffle(ranked)  # item ids in no order of popularity
    offset, power = ML_POPULARITY
    weights = [1.0 / (rank + offset) ** power for rank in range(items)]
    cum = list(itertools.accumulate(weights))
    quality = [rng.gauss(0.0, 0.5) for _ in range(items + 1)]
    cuts = _rating_cuts(spread=math.sqrt(1.0 + 0.5**2 + 0.4**2))  # quality, leniency and noise together
    span = ML_LAST - ML_FIRST + 1
    rows = []
    for user, count in enumerate(counts, start=1):
        leniency = rng.gauss(0.0, 0.4)
        moments = session_offsets(rng, count, span, ML_SESSION_EVENTS, ML_SAME_SECOND)
        for moment, rank in zip(moments, _distinct(rng, count, weights, cum), strict=True):
            item = ranked[rank]
            score = quality[item] + leniency + rng.gauss(0.0, 1.0)
            rows.append((ML_FIRST + moment, user, item, 1 + sum(score > cut for cut in cuts)))
    return rows


def _movielens_sizes(lines: int) -> tuple[int, int]:
    """Users and items for `lines` ratings: MovieLens 100k's, users scaled with the lines and items
    with their square root (a catalogue grows slower than its ratings); for a small log, at least
    eight times a user's mean of items, so that few users would rate more than half of them."""
    users = max(1, round(ML_USERS * lines / ML_LINES))
    return users, max(10, round(ML_ITEMS * math.sqrt(lines / ML_LINES)), 8 * math.ceil(lines / users))


def _history_counts(rng: random.Random, lines: int, users: int) -> list[int]:
    """Ratings per user, `lines` in all: the minimum plus a gamma draw, the draws scaled to the total."""
    least = min(ML_MIN_RATINGS, lines // users)
    draws = [rng.gammavariate(ML_GAMMA, 1.0) for _ in range(users)]
    scale = (lines - least * users) / sum(draws)
    exact = [draw * scale for draw in draws]
    counts = [least + int(x) for x in exact]
    by_fraction = sorted(range(users), key=lambda u: int(exact[u]) - exact[u])  # largest fraction first
    for user in by_fraction[: lines - sum(counts)]:
        counts[user] += 1
    return counts


def _capped(rng: random.Random, counts: list[int], cap: int) -> list[int]:
    """`counts` with none above `cap`, what is cut given one by one to users below it."""
    spare = sum(max(0, count - cap) for count in counts)
    counts = [min(count, cap) for count in counts]
    while spare:
        user = rng.randrange(len(counts))
        if counts[user] < cap:
            counts[user] += 1
            spare -= 1
    return counts


def _distinct(rng: random.Random, n: int, weights: list[float], cum: list[float]) -> list[int]:
    """`n` distinct ranks, drawn one after another by weight without replacement: by repeated draws
    for a short list, by exponential keys (Efraimidis-Spirakis) for a long one."""
    if n > len(weights) // 8:
        return heapq.nsmallest(n, range(len(weights)), key=lambda r: rng.expovariate(1.0) / weights[r])
    chosen: dict[int, None] = {}
    total, hi = cum[-1], len(cum) - 1
    while len(chosen) < n:
        chosen[bisect_right(cum, rng.random() * total, 0, hi)] = None
    return list(chosen)


def _rating_cuts(spread: float) -> list[float]:
    """The four cuts on a normal score of standard deviation `spread` that split it into ratings 1..5
    in MovieLens' proportions."""
    shares = list(itertools.accumulate(ML_RATINGS))[:-1]
    return [NormalDist(0.0, spread).inv_cdf(share) for share in shares]


def write_movielens_items(out: Path, items: int, *, seed: int = 7) -> None:
    """An item file like MovieLens 100k's `u.item` for items 1..`items` (module docstring)."""
    rng = random.Random(f"{seed}-items")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="latin-1", newline="\n") as handle:
        for item in range(1, items + 1):
            year = min(1998, round(rng.triangular(1930, 1999, 1996)))
            title = f"{_title(rng)} ({year})"
            released = f"{rng.randint(1, 28):02d}-{rng.choice(MONTHS)}-{year}"
            url = "http://us.imdb.com/M/title-exact?" + quote(title, safe="(),", encoding="latin-1")
            handle.write("|".join([str(item), title, released, "", url, *_genre_flags(rng)]) + "\n")


def _title(rng: random.Random) -> str:
    """A film title in MovieLens' form: a leading article moved to the end (`Lost River, The`)."""
    words = [rng.choice(TITLE_ADJECTIVES), rng.choice(LATIN1_WORDS if rng.random() < 0.05 else TITLE_WORDS)]
    if rng.random() < 0.3:
        words += ["of", "the", rng.choice(TITLE_WORDS)]
    name = " ".join(words)
    return f"{name}, The" if rng.random() < 0.3 else name


def _genre_flags(rng: random.Random) -> list[str]:
    """19 genre flags, one to three of them set."""
    chosen = set(rng.choices(range(len(ML_GENRES)), ML_GENRE_WEIGHTS, k=rng.randint(1, 3)))
    return ["1" if genre in chosen else "0" for genre in range(len(ML_GENRES))]
