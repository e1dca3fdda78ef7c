"""Which ANN library serves the item index: faiss-cpu, usearch and hnswlib side by side on one item table.

    PYTHONPATH=<dir with the libraries> python benchmarks/ann_libraries.py [--items 1000000] [--dim 64]

Builds an inner-product index over a synthetic clustered item table (``--items`` x ``--dim``, float32) with each
library found, and reports build time (``--threads``), index size (bytes on disk) and resident memory growth, and,
at several search breadths, single-query latency (p50 / p99, one thread; fetch 50 candidates, re-score them exactly,
keep 10, as the service does) and recall@10 against exact top-10 for ``--queries`` user-like queries.
(Turning inner product into L2 with one extra coordinate was tried and dropped: recall fell to 0.15-0.4.)
Libraries that do not import
are listed as missing. The serving index (``recbole_paragon/serving/ann.py``) uses the one this picked.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, print_table  # noqa: E402

K = 10
CANDIDATES = 50  # fetched from the index, re-scored exactly, best K kept (as the service does)


def clustered_table(items: int, dim: int, seed: int, rank: int = 24, clusters: int = 1024) -> np.ndarray:
    """Items around ``clusters`` centres in a ``rank``-dimensional subspace, isotropic noise, spread norms: trained
    item embeddings have this kind of structure, not that of white noise. The same generator builds the synthetic
    bundle of ``benchmarks/serving.py --large``."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, rank)))[0].T  # [rank, dim], orthonormal rows
    centres = rng.standard_normal((clusters, rank)) @ basis
    table = centres[rng.integers(0, clusters, items)] + 0.35 * rng.standard_normal((items, dim))
    return (table * rng.lognormal(0, 0.2, (items, 1))).astype(np.float32)


def user_like(table: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Queries shaped like user states: the mean of 5 random items plus noise."""
    rng = np.random.default_rng(seed)
    picks = table[rng.integers(0, len(table), (count, 5))].mean(1)
    return (picks + 0.2 * rng.standard_normal(picks.shape)).astype(np.float32)


def exact_top(table: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = queries @ table.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS")) / 1024


def faiss_hnsw(table: np.ndarray, threads: int, quantised: bool = False):
    """HNSW over the vectors, or (``quantised``) over 8-bit scalar-quantised ones: a quarter of the memory, the
    exact re-scoring repairs the order."""
    import faiss

    faiss.omp_set_num_threads(threads)
    if quantised:
        index = faiss.IndexHNSWSQ(table.shape[1], faiss.ScalarQuantizer.QT_8bit, 16, faiss.METRIC_INNER_PRODUCT)
        index.train(table[:min(len(table), 100_000)])
    else:
        index = faiss.IndexHNSWFlat(table.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    index.add(table)
    faiss.omp_set_num_threads(1)

    def search(query, k, breadth):
        index.hnsw.efSearch = breadth
        return index.search(query[None], k)[1][0]
    return search, lambda path: faiss.write_index(index, path)


def faiss_ivf(table: np.ndarray, threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    lists = min(4096, len(table) // 40)
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(table.shape[1]), table.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
    index.train(table[np.random.default_rng(0).choice(len(table), min(len(table), 40 * lists), replace=False)])
    index.add(table)
    faiss.omp_set_num_threads(1)

    def search(query, k, breadth):
        index.nprobe = max(1, breadth // 4)
        return index.search(query[None], k)[1][0]
    return search, lambda path: faiss.write_index(index, path)


def usearch_hnsw(table: np.ndarray, threads: int):
    from usearch.index import Index

    index = Index(ndim=table.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128)
    index.add(np.arange(len(table)), table, threads=threads)

    def search(query, k, breadth):
        index.expansion_search = breadth
        return index.search(query, k, threads=1).keys
    return search, index.save


def hnswlib_hnsw(table: np.ndarray, threads: int):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=table.shape[1])
    index.init_index(max_elements=len(table), M=16, ef_construction=128)
    index.set_num_threads(threads)
    index.add_items(table, np.arange(len(table)))
    index.set_num_threads(1)

    def search(query, k, breadth):
        index.set_ef(breadth)
        return index.knn_query(query[None], k)[0][0]
    return search, index.save_index


LIBRARIES: Dict[str, Callable] = {"faiss-cpu HNSW16": faiss_hnsw,
                                  "faiss-cpu HNSW16 SQ8": lambda table, threads: faiss_hnsw(table, threads, True),
                                  "faiss-cpu IVF (nprobe = breadth / 4)": faiss_ivf, "usearch HNSW16": usearch_hnsw,
                                  "hnswlib HNSW16": hnswlib_hnsw}
BREADTHS = (64, 128, 256)


def measure(name: str, build: Callable, table: np.ndarray, queries: np.ndarray, truth: np.ndarray, threads: int
            ) -> List[List]:
    """One row per search breadth: build s, file MiB, RSS growth MiB, p50 / p99 ms, recall@10."""
    memory = rss_mib()
    start = time.perf_counter()
    search, save = build(table, threads)
    built = time.perf_counter() - start
    grown = rss_mib() - memory
    path = tempfile.mktemp()
    save(path)
    size = os.path.getsize(path) / 2 ** 20
    os.remove(path)
    rows = []
    for breadth in BREADTHS:
        latencies, hits = [], 0
        for query, expected in zip(queries, truth):
            begin = time.perf_counter()
            found = np.asarray(search(query, CANDIDATES, breadth), dtype=np.int64)
            found = found[found >= 0]
            best = found[np.argsort(-(table[found] @ query))[:K]]  # the candidates re-scored exactly
            latencies.append((time.perf_counter() - begin) * 1000)
            hits += len(set(best.tolist()) & set(expected.tolist()))
        latencies.sort()
        rows.append([name, breadth, f"{built:.1f}", f"{size:.0f}", f"{grown:.0f}",
                     f"{latencies[len(latencies) // 2]:.3f}", f"{latencies[int(0.99 * len(latencies))]:.3f}",
                     f"{hits / (K * len(queries)):.4f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="build threads")
    parser.add_argument("--only", nargs="*", default=None, help="names of LIBRARIES to run (default: all)")
    args = parser.parse_args()
    load = os.popen("uptime").read().strip()
    table = clustered_table(args.items, args.dim, 0)
    queries = user_like(table, args.queries, 1)
    truth = exact_top(table, queries)
    rows: List[List] = []
    for name, build in LIBRARIES.items():
        if args.only and not any(part in name for part in args.only):
            continue
        try:
            rows += measure(name, build, table, queries, truth, args.threads)
        except ImportError as error:
            rows.append([name, "-", f"missing ({error.name})", "", "", "", "", ""])
        print(rows[-1], f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    print(f"machine: {machine()}; uptime before: {load}; {args.items} items x {args.dim}, {args.queries} queries, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print_table(rows, ["library / index", "search breadth", "build s", "file MiB", "RSS growth MiB", "p50 ms",
                       "p99 ms", "recall@10"])
    print(f"uptime after: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
