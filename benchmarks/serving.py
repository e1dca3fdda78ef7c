"""Serving load on loopback: the HTTP service and the Python API on an ml-100k bundle; replicas; a large catalogue.

    python benchmarks/serving.py [--run_dir=DIR] [--clients 8] [--seconds 20] [--workers 1 2]
    python benchmarks/serving.py --large DIR [--items 1000000] [--recall_users 1000]

Starts ``run_recbole_paragon.py --stage=serve`` on 127.0.0.1 (a free port), then for ``--seconds`` each:
(a) ``--clients`` concurrent keep-alive clients, one cached preference, random known users;
(b) the same with a new preference per request (every request generates an adapter);
(c) batched Python API calls (``ParagonRecommender.recommend`` on ``--batch`` users, new preference per call).
With ``--workers 1 2`` (a) and (b) run once per number of uvicorn worker processes, side by side.
``--large DIR`` serves a synthetic catalogue (``benchmarks/serving_bundles.py``: built at DIR from the ml-100k bundle
when missing) from its item index and with exact scoring, (a) and (b) each, then the ml-100k bundle as a reference
under the same load, and measures recall@10 of the index against exact scoring over ``--recall_users`` users. Without ``--run_dir`` an ml-100k bundle is trained on a tiny
budget first (``serving_bundles.py``). Prints p50 / p99 latency, requests/s, errors, server CPU per request and the
load average around every scenario (the machine is shared); the load is bounded in time, only sent to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, print_table  # noqa: E402
from serving_load import (free_port, http_load, known_users, random_preference, scenario, start_service,  # noqa: E402
                          stop, summary, uptime)

TARGETS = {"a": 20.0, "b": 50.0}  # p99 ms
MIN_RATE_A = 300.0
NAMES = {"a": "(a) HTTP, cached preference", "b": "(b) HTTP, new preference per request"}
HEADERS = ["scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms", "server CPU ms / req", "server RSS MiB",
           "load before -> after"]


def http_scenarios(bundle: str, clients: int, seconds: float, settings: List[str]) -> Dict[str, Dict]:
    """(a) and (b) against one service started with ``settings``."""
    port = free_port()
    service = start_service(bundle, port, settings)
    try:
        users = known_users(bundle, 1000)
        asyncio.run(http_load(port, users, clients, 2.0, False))  # warm: (a)'s adapter in every worker, code hot
        return {key: scenario(service, port, users, clients, seconds, new) for key, new in (("a", False),
                                                                                           ("b", True))}
    finally:
        stop(service)


def row(name: str, r: Dict) -> List:
    return [name, r["requests"], r["errors"], f"{r['rate']:.1f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
            f"{r['cpu']:.2f}" if "cpu" in r else "-", f"{r['rss']:.0f}" if "rss" in r else "-", r.get("uptime", "-")]


def verdicts(rows: Dict[str, Dict], label: str, rate: bool = True) -> None:
    checks = [(rows["a"]["p99"] <= TARGETS["a"], f"{label} (a) p99 {rows['a']['p99']:.1f} ms (target <= 20)"),
              (rows["b"]["p99"] <= TARGETS["b"], f"{label} (b) p99 {rows['b']['p99']:.1f} ms (target <= 50)"),
              (not any(r["errors"] for r in rows.values()),
               f"{label} errors {sum(r['errors'] for r in rows.values())}")]
    if rate:
        checks.insert(1, (rows["a"]["rate"] >= MIN_RATE_A,
                          f"{label} (a) {rows['a']['rate']:.0f} req/s (target >= 300)"))
    for ok, text in checks:
        print(("met   " if ok else "MISSED") + f" {text}")


def python_api_load(run_dir: str, batch: int, seconds: float) -> Dict[str, float]:
    import torch

    from recbole_paragon import ParagonRecommender

    torch.set_num_threads(1)
    recommender = ParagonRecommender.load(run_dir)
    users = recommender.catalogue.user_tokens[1:]
    rng = random.Random(0)
    recommender.recommend(users=users[:batch], preference=[0.5, 0.5])  # warm: every user's state once
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        chosen = rng.sample(users, batch)
        begin = time.perf_counter()
        result = recommender.recommend(users=chosen, preference=random_preference(rng), k=10)
        latencies.append((time.perf_counter() - begin) * 1000)
        if len(result) != batch or any(len(items) != 10 for items in result):
            errors.append("short result")
    return summary(latencies, errors, time.perf_counter() - start)


def small_catalogue(args) -> None:
    """ml-100k: (a) and (b) per number of worker processes, then (c)."""
    results = {}
    for workers in args.workers:
        results[workers] = http_scenarios(args.run_dir, args.clients, args.seconds, [f"--serve_workers={workers}"])
    api = python_api_load(args.run_dir, args.batch, args.seconds)
    print(f"machine: {machine()}; {args.clients} clients, {args.seconds:.0f} s per scenario, bundle {args.run_dir}")
    table = [row(f"{NAMES[key]}, {workers} worker(s)", r) for workers, rows in results.items()
             for key, r in rows.items()]
    table.append(row(f"(c) Python API, {args.batch} users per call, new preference", api))
    print_table(table, HEADERS)
    for workers, rows in results.items():
        verdicts(rows, f"{workers} worker(s):")
    if len(results) > 1:
        first, *others = sorted(results)
        for workers in others:
            print(f"{workers} workers / {first}: (a) x{results[workers]['a']['rate'] / results[first]['a']['rate']:.2f}"
                  f" req/s, (b) x{results[workers]['b']['rate'] / results[first]['b']['rate']:.2f} req/s")


def recall(bundle: str, users: int, k: int = 10) -> Dict[str, float]:
    """Recall@k of the item index against exact scoring, over ``users`` known users and two preferences."""
    import torch

    from recbole_paragon import ParagonRecommender

    torch.set_num_threads(1)
    recommender = ParagonRecommender.load(bundle, settings={"serve_index_min_items": 0})
    index = recommender.index
    chosen = random.Random(0).sample(known_users(bundle), users)
    found = hits = 0
    seconds = {"index": 0.0, "exact": 0.0}
    for preference in ([0.5, 0.5], [0.9, 0.1]):
        for start in range(0, users, 50):
            batch = chosen[start:start + 50]
            results = {}
            for name, used in (("index", index), ("exact", None)):
                recommender.index = used
                begin = time.perf_counter()
                results[name] = recommender.rank(users=batch, preference=preference, k=k).items
                seconds[name] += time.perf_counter() - begin
            hits += sum(len(set(a) & set(e)) for a, e in zip(results["index"], results["exact"]))
            found += sum(len(e) for e in results["exact"])
    return {"recall": hits / found, "rows": found // k, **{f"{n}_ms_per_user": s * 1000 / (2 * users)
                                                          for n, s in seconds.items()}}


def large_catalogue(args) -> None:
    """A synthetic catalogue of ``--items`` items: (a) and (b) from the index and exact, recall, index cost."""
    from serving_bundles import large_bundle, ml100k_bundle

    built_file = args.large.rstrip("/") + ".build.json"
    if not os.path.isfile(os.path.join(args.large, "manifest.json")):
        built = large_bundle(ml100k_bundle(args.run_dir), args.large, args.items, 2000)
        built["uptime"] = uptime()
        with open(built_file, "w") as handle:
            json.dump(built, handle)
    built = json.load(open(built_file))
    results = {name: http_scenarios(args.large, args.clients, args.seconds, [f"--serve_index_min_items={limit}"])
               for name, limit in (("index", 0), ("exact", 10 ** 9))}
    results["ml-100k (reference, same load)"] = http_scenarios(args.run_dir, args.clients, args.seconds, [])
    measured = recall(args.large, args.recall_users)
    print(f"machine: {machine()}; {args.clients} clients, {args.seconds:.0f} s per scenario, bundle {args.large} "
          f"({args.items} items, d = 64)")
    print(f"item index: built in {built['index_build_s']:.1f} s (load then: {built['uptime']}), "
          f"file {built['index_file_mib']:.0f} MiB (held in memory when served: compare the RSS of the two services)")
    print_table([row(f"{NAMES[key]}, {name}", r) for name, rows in results.items() for key, r in rows.items()],
                HEADERS)
    print(f"recall@10 of the index against exact scoring: {measured['recall']:.4f} over {measured['rows']} "
          f"user x preference rows; Python API per user: index {measured['index_ms_per_user']:.2f} ms, exact "
          f"{measured['exact_ms_per_user']:.2f} ms")
    verdicts(results["index"], "index:", rate=False)
    print(("met   " if measured["recall"] >= 0.95 else "MISSED") + f" recall@10 {measured['recall']:.4f} "
          f"(target >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", default=os.path.join(REPO, "saved", "benchmarks", "serving-ml-100k"),
                        help="an ml-100k run with a bundle (trained on a tiny budget when missing)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario")
    parser.add_argument("--batch", type=int, default=64, help="users per Python API call in (c)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="uvicorn worker processes to compare")
    parser.add_argument("--large", default=None, help="a large synthetic bundle (built there when missing)")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--recall_users", type=int, default=1000)
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 120 or not all(1 <= w <= 8 for w in args.workers):
        parser.error("keep the load bounded: 1-64 clients, at most 120 s per scenario, 1-8 workers")
    print(f"uptime at start: {uptime()}")
    if args.large:
        large_catalogue(args)
    else:
        from serving_bundles import ml100k_bundle

        ml100k_bundle(args.run_dir)
        small_catalogue(args)
    print(f"uptime at end: {uptime()}")


if __name__ == "__main__":
    main()
