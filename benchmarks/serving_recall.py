"""Recall@10 of the item index against exact scoring, per search breadth, one user per call (as HTTP asks).

    python benchmarks/serving_recall.py --bundle DIR [--breadths 256 384 512] [--users 1000]

Exact top-10 once (batches of 50), then for each breadth every user again from the index; two preferences. Prints
recall@10 and milliseconds per user (Python API, one thread) with the load average.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serving_load import known_users, uptime  # noqa: E402

from recbole_paragon import ParagonRecommender  # noqa: E402

PREFERENCES = ([0.5, 0.5], [0.9, 0.1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--breadths", type=int, nargs="+", default=[256, 384, 512])
    parser.add_argument("--extra", type=int, default=40, help="serve_index_candidates")
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"uptime: {uptime()}")
    recommender = ParagonRecommender.load(args.bundle, settings={"serve_index_min_items": 0,
                                                                 "serve_index_candidates": args.extra})
    index, recommender.index = recommender.index, None
    users = random.Random(0).sample(known_users(args.bundle), args.users)
    exact = {}
    for preference in PREFERENCES:
        for start in range(0, len(users), 50):
            rows = recommender.rank(users=users[start:start + 50], preference=preference, k=10).items
            exact.update({(user, tuple(preference)): items for user, items in zip(users[start:], rows)})
    recommender.index = index
    for breadth in args.breadths:
        index.expansion, hits, begin = breadth, 0, time.perf_counter()
        for preference in PREFERENCES:
            for user in users:
                found = recommender.rank(users=[user], preference=preference, k=10).items[0]
                hits += len(set(found) & set(exact[(user, tuple(preference))]))
        seconds = time.perf_counter() - begin
        print(f"breadth {breadth}: recall@10 {hits / (10 * len(exact)):.4f}, "
              f"{seconds * 1000 / len(exact):.2f} ms per user; uptime {uptime()}", flush=True)


if __name__ == "__main__":
    main()
