"""Which ANN library serves the item index: faiss-cpu, usearch and hnswlib side by side on one item table.

    PYTHONPATH=<dir with the libraries> python benchmarks/ann_libraries.py [--items 1000000] [--dim 64]

Builds an inner-product index over a synthetic clustered item table (``--items`` x ``--dim``, float32) with each
library found, and reports build time, index size (bytes on disk) and resident memory growth, single-query latency
(p50 / p99, one thread) and recall@10 against exact top-10 for ``--queries`` queries. Libraries that do not import
are listed as missing. The serving index (``recbole_paragon/serving/ann.py``) uses the one this picked.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, print_table  # noqa: E402

K = 10


def clustered_table(items: int, dim: int, seed: int) -> np.ndarray:
    """Items around 2 000 centres, with spread norms (trained embeddings look like this, not like white noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    table = centres[rng.integers(0, len(centres), items)] * 0.7 + rng.standard_normal((items, dim)).astype(
        np.float32) * 0.5
    return table * rng.lognormal(0, 0.25, (items, 1)).astype(np.float32)


def exact_top(table: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = queries @ table.T
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS")) / 1024


def faiss_hnsw(table: np.ndarray, threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(table.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(table)
    index.hnsw.efSearch = 96
    faiss.omp_set_num_threads(1)
    path = tempfile.mktemp()
    faiss.write_index(index, path)
    return (lambda q, k: index.search(q[None], k)[1][0]), path


def faiss_ivf(table: np.ndarray, threads: int):
    import faiss

    faiss.omp_set_num_threads(threads)
    quantizer = faiss.IndexFlatIP(table.shape[1])
    index = faiss.IndexIVFFlat(quantizer, table.shape[1], min(2048, len(table) // 40), faiss.METRIC_INNER_PRODUCT)
    index.train(table[np.random.default_rng(0).choice(len(table), min(len(table), 100_000), replace=False)])
    index.add(table)
    index.nprobe = 24
    faiss.omp_set_num_threads(1)
    path = tempfile.mktemp()
    faiss.write_index(index, path)
    return (lambda q, k: index.search(q[None], k)[1][0]), path


def usearch_hnsw(table: np.ndarray, threads: int):
    from usearch.index import Index

    index = Index(ndim=table.shape[1], metric="ip", dtype="f32", connectivity=16, expansion_add=128,
                  expansion_search=96)
    index.add(np.arange(len(table)), table, threads=threads)
    path = tempfile.mktemp()
    index.save(path)
    return (lambda q, k: index.search(q, k, threads=1).keys), path


def hnswlib_hnsw(table: np.ndarray, threads: int):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=table.shape[1])
    index.init_index(max_elements=len(table), M=16, ef_construction=128)
    index.set_num_threads(threads)
    index.add_items(table, np.arange(len(table)))
    index.set_ef(96)
    index.set_num_threads(1)
    path = tempfile.mktemp()
    index.save_index(path)
    return (lambda q, k: index.knn_query(q[None], k)[0][0]), path


LIBRARIES: Dict[str, Callable] = {"faiss-cpu HNSW32 (ef 96)": faiss_hnsw, "faiss-cpu IVF2048 (nprobe 24)": faiss_ivf,
                                  "usearch HNSW16 (ef 96)": usearch_hnsw, "hnswlib HNSW16 (ef 96)": hnswlib_hnsw}


def measure(build: Callable, table: np.ndarray, queries: np.ndarray, truth: np.ndarray, threads: int) -> List:
    memory = rss_mib()
    start = time.perf_counter()
    search, path = build(table, threads)
    built = time.perf_counter() - start
    grown = rss_mib() - memory
    size = os.path.getsize(path) / 2 ** 20
    os.remove(path)
    latencies, hits = [], 0
    for query, expected in zip(queries, truth):
        begin = time.perf_counter()
        found = search(query, K)
        latencies.append((time.perf_counter() - begin) * 1000)
        hits += len(set(np.asarray(found).tolist()) & set(expected.tolist()))
    latencies.sort()
    return [f"{built:.1f}", f"{size:.0f}", f"{grown:.0f}", f"{latencies[len(latencies) // 2]:.3f}",
            f"{latencies[int(0.99 * len(latencies))]:.3f}", f"{hits / (K * len(queries)):.4f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="build threads")
    args = parser.parse_args()
    load = os.popen("uptime").read().strip()
    table = clustered_table(args.items, args.dim, 0)
    queries = clustered_table(args.queries, args.dim, 1)
    truth = exact_top(table, queries)
    rows: List[Tuple] = []
    for name, build in LIBRARIES.items():
        try:
            rows.append([name, *measure(build, table, queries, truth, args.threads)])
        except ImportError as error:
            rows.append([name, f"missing ({error.name})", "", "", "", "", ""])
        print(rows[-1], flush=True)
    print(f"machine: {machine()}; uptime before: {load}; {args.items} items x {args.dim}, {args.queries} queries, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print_table(rows, ["library / index", "build s", "file MiB", "RSS growth MiB", "p50 ms", "p99 ms", "recall@10"])
    print(f"uptime after: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
