"""Synthetic RecBole atomic datasets of a chosen shape (users x items x categories), for the scale benchmark.

    python benchmarks/synthetic.py --users 25000 --items 12000 --categories 600 --interactions 200000 --out DIR

Writes ``<name>/<name>.inter`` (``user_id:token item_id:token rating:float timestamp:float``) and ``<name>/<name>.item``
(``item_id:token topics:token_seq``); there is no ``.user`` file (fairness groups come from ``group_by: activity``).

* item popularity follows a power law (Zipf exponent ``popularity_exponent`` over a random ranking of items);
* every item carries 1..``max_categories`` distinct categories drawn from a long tail (Zipf over categories), the
  first one its *primary* category;
* users' activity is spread (log-normal number of interactions, at least ``min_per_user``), their taste is a few
  favourite categories drawn by category popularity;
* a user's history is sessions (geometric length): each session follows one category (a favourite, sometimes any
  category), picks its items by popularity among that category's items, and re-consumes an item of the user's own
  history with probability ``repeat``. Timestamps increase within a user, with gaps between sessions.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

CATEGORY_FIELD = "topics"


@dataclass(frozen=True)
class Shape:
    users: int
    items: int
    categories: int
    interactions: int
    max_categories: int = 4
    popularity_exponent: float = 0.8
    category_exponent: float = 1.1
    session_length: float = 5.0
    repeat: float = 0.15
    min_per_user: int = 5
    seed: int = 0

    @property
    def name(self) -> str:
        return f"synth-{self.users}u-{self.items}i-{self.categories}c-{self.interactions}x"


#: ml-100k's shape (943 users, 1682 items, 19 genres, 100k ratings) up to the issue's largest.
SHAPES = {
    "ml100k-like": Shape(943, 1682, 19, 100_000, max_categories=6),
    "25k": Shape(25_000, 12_000, 600, 200_000),
    "50k": Shape(50_000, 20_000, 1_000, 400_000),
    # long session histories (about 50 interactions per user), a mid-size catalogue: unlike ml-100k in every way
    "long": Shape(6_000, 8_000, 200, 300_000, session_length=12.0, min_per_user=20),
}


def without_item_file(directory: str, name: str) -> str:
    """A copy of dataset ``name`` with its interactions only (``<name>-noitem``, the .inter hard-linked): no
    categories at all. Returns the new name."""
    copy = f"{name}-noitem"
    os.makedirs(os.path.join(directory, copy), exist_ok=True)
    target = os.path.join(directory, copy, f"{copy}.inter")
    if not os.path.exists(target):
        os.link(os.path.join(directory, name, f"{name}.inter"), target)
    return copy


def zipf_weights(count: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Power-law weights over ``count`` entries in random order (sum 1)."""
    weights = 1.0 / np.arange(1, count + 1) ** exponent
    return rng.permutation(weights / weights.sum())


def item_categories(shape: Shape, rng: np.random.Generator) -> List[np.ndarray]:
    """Distinct categories (1-based) per item; the first is the primary one. Every category is some item's primary
    category while there are items enough, so no category is empty."""
    weights = zipf_weights(shape.categories, shape.category_exponent, rng)
    counts = 1 + rng.binomial(shape.max_categories - 1, 0.3, shape.items)
    primary = rng.choice(shape.categories, shape.items, p=weights)
    primary[: min(shape.items, shape.categories)] = rng.permutation(shape.categories)[: shape.items]
    result = []
    for item in range(shape.items):
        extra = rng.choice(shape.categories, 2 * counts[item], p=weights)
        chosen = list(dict.fromkeys([primary[item], *extra]))[: counts[item]]
        result.append(np.array(chosen) + 1)
    return result


def category_samplers(primary: np.ndarray, popularity: np.ndarray, categories: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per category: its items (by primary category) and their cumulative popularity, for inverse-CDF draws."""
    samplers = []
    for category in range(1, categories + 1):
        members = np.flatnonzero(primary == category)
        if len(members) == 0:
            members = np.arange(len(primary))
        cumulative = np.cumsum(popularity[members])
        samplers.append((members, cumulative / cumulative[-1]))
    return samplers


def user_lengths(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: log-normal spread, at least ``min_per_user``, summing to about ``interactions``."""
    raw = rng.lognormal(0.0, 1.0, shape.users)
    extra = max(shape.interactions - shape.min_per_user * shape.users, 0)
    lengths = shape.min_per_user + np.floor(raw / raw.sum() * extra).astype(int)
    short = max(shape.interactions - int(lengths.sum()), 0)
    lengths[rng.choice(shape.users, min(short, shape.users), replace=False)] += 1
    return lengths


def user_history(length: int, favourites: np.ndarray, samplers, category_weights: np.ndarray, shape: Shape,
                 rng: np.random.Generator) -> np.ndarray:
    """One user's item sequence: sessions following one category each, with repeats of the user's own items."""
    history = np.empty(length, dtype=np.int64)
    filled = 0
    while filled < length:
        size = min(length - filled, rng.geometric(1.0 / shape.session_length))
        if rng.random() < 0.8:
            category = rng.choice(favourites)
        else:
            category = rng.choice(len(category_weights), p=category_weights) + 1
        members, cumulative = samplers[category - 1]
        picks = members[np.minimum(np.searchsorted(cumulative, rng.random(size)), len(members) - 1)]
        repeats = rng.random(size) < shape.repeat
        if filled and repeats.any():
            picks[repeats] = history[rng.integers(0, filled, int(repeats.sum()))]
        history[filled: filled + size] = picks
        filled += size
    return history


def write_dataset(shape: Shape, directory: str) -> str:
    """Write the atomic files of ``shape`` under ``directory/<name>/`` (skipped when they exist); returns the name."""
    path = os.path.join(directory, shape.name)
    inter, item = (os.path.join(path, f"{shape.name}.{kind}") for kind in ("inter", "item"))
    if os.path.isfile(inter) and os.path.isfile(item):
        return shape.name
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(shape.seed)
    categories = item_categories(shape, rng)
    primary = np.array([c[0] for c in categories])
    popularity = zipf_weights(shape.items, shape.popularity_exponent, rng)
    category_weights = np.bincount(primary, weights=popularity, minlength=shape.categories + 1)[1:]
    category_weights /= category_weights.sum()
    samplers = category_samplers(primary, popularity, shape.categories)
    with open(item + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(f"item_id:token\t{CATEGORY_FIELD}:token_seq\n")
        for index, cats in enumerate(categories):
            handle.write(f"i{index + 1}\t{' '.join(f'c{c}' for c in cats)}\n")
    with open(inter + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for user, length in enumerate(user_lengths(shape, rng)):
            favourites = rng.choice(shape.categories, 3, p=category_weights) + 1
            items = user_history(int(length), favourites, samplers, category_weights, shape, rng)
            times = 880_000_000 + np.cumsum(rng.integers(60, 3_600, len(items)))
            ratings = rng.integers(1, 6, len(items))
            handle.writelines(f"u{user + 1}\ti{i + 1}\t{r}\t{t}\n" for i, r, t in zip(items, ratings, times))
    os.replace(item + ".tmp", item)
    os.replace(inter + ".tmp", inter)
    return shape.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--categories", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--out", default=os.path.join("saved", "benchmarks", "scale-data"))
    args = parser.parse_args()
    shape = Shape(args.users, args.items, args.categories, args.interactions)
    print(os.path.join(args.out, write_dataset(shape, args.out)))


if __name__ == "__main__":
    main()
