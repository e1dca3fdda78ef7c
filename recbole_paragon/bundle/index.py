"""The item index of a large catalogue: an approximate nearest-neighbour (HNSW, faiss-cpu) index over the score
head's item table, by inner product.

The adapter sits on the user side, so the item table never changes with the preference: one index serves every
preference. Each score head maps onto it (``ScoreHead.index_table``): a plain dot product (SASRec, GRU4Rec, ...)
as is, NPE's ReLU table and CORE's normalised table transformed once at build, BERT4Rec's per-item bias as one more
coordinate (the query gets a 1), CORE's positive temperature dropped (it scales every score alike); a head without
such a table (a temperature <= 0) is scored exactly. The index only proposes candidates: the service re-scores them
with the model's own head (``serving/topk.py``), so the scores it returns are exact.

It is built at export for catalogues of ``serve_index_min_items`` or more and listed in the manifest (so the
signature covers it); a bundle exported without one builds it in memory when loaded. The file is read by faiss's
own binary reader, after its SHA-256 was checked; nothing is unpickled.
"""
from __future__ import annotations

import os
import time
from logging import getLogger
from typing import Optional

import numpy as np
import torch

from recbole_paragon.artifacts import ArtifactError, atomic_path
from recbole_paragon.settings import setting

FAISS_MISSING = "the item index of a large catalogue needs faiss-cpu: pip install 'recbole-paragon[serve]'"


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError(FAISS_MISSING) from None
    return faiss


def index_threads(threads: int) -> None:
    """faiss's OpenMP threads (the service uses ``serve_threads``, as for torch: idle OpenMP threads spin, which a
    shared machine pays for in latency); nothing when faiss is not installed."""
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(int(threads))


def wants_index(config, num_items: int) -> bool:
    """Whether a catalogue of ``num_items`` (padding included) is served from the index."""
    return num_items - 1 >= int(setting(config, "serve_index_min_items"))


class ItemIndex:
    """An HNSW index over items ``1 .. n_items - 1`` (padding left out), queried by inner product."""

    def __init__(self, index, expansion: int) -> None:
        self.index = index
        self.expansion = int(expansion)

    @classmethod
    def build(cls, table: torch.Tensor, config, threads: int = 0) -> "ItemIndex":
        """Build over ``table [n_items, D]`` (``ScoreHead.index_table``); ``threads`` 0: faiss's default."""
        faiss = _faiss()
        start = time.perf_counter()
        vectors = np.ascontiguousarray(table[1:].detach().float().numpy())
        index = faiss.IndexHNSWFlat(vectors.shape[1], int(setting(config, "serve_index_connectivity")),
                                    faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(setting(config, "serve_index_build_expansion"))
        previous = faiss.omp_get_max_threads()
        if threads:
            faiss.omp_set_num_threads(threads)
        try:
            index.add(vectors)
        finally:
            faiss.omp_set_num_threads(previous)
        seconds = time.perf_counter() - start
        getLogger().info(f"item index: {len(vectors)} items x {vectors.shape[1]} in {seconds:.1f} s")
        return cls(index, int(setting(config, "serve_index_expansion")))

    def save(self, path: str) -> None:
        with atomic_path(path) as temporary:
            _faiss().write_index(self.index, temporary)

    @classmethod
    def load(cls, path: str, config, dimension: int, items: int, fix: str) -> "ItemIndex":
        """The index file at ``path`` (its SHA-256 already checked), for ``items`` items of ``dimension``."""
        faiss = _faiss()
        try:
            index = faiss.read_index(path)
        except RuntimeError as error:
            raise ArtifactError(f"{path} is not a faiss index this version reads ({str(error)[:200]}); {fix}") from None
        if index.d != dimension or index.ntotal != items - 1:
            raise ArtifactError(f"{path} indexes {index.ntotal} items of dimension {index.d}, the bundle has "
                                f"{items - 1} of dimension {dimension}; {fix}")
        return cls(index, int(setting(config, "serve_index_expansion")))

    def candidates(self, queries: torch.Tensor, count: int) -> torch.Tensor:
        """Item ids ``[B, count]`` (internal ids; ``-1`` where fewer were found) nearest to ``queries [B, D]``."""
        faiss = _faiss()
        count = min(count, self.index.ntotal)
        parameters = faiss.SearchParametersHNSW(efSearch=max(self.expansion, count))
        _, found = self.index.search(np.ascontiguousarray(queries.detach().float().numpy()), count,
                                     params=parameters)
        found = torch.from_numpy(found)
        return torch.where(found >= 0, found + 1, found)  # faiss row r is item r + 1 (item 0 is padding)


def item_index(config, model, directory: str, name: str, listed: bool, fix: str) -> Optional[ItemIndex]:
    """The bundle's index when its catalogue is large enough (``None`` otherwise, or for a head without an index
    table): read from ``name`` in ``directory`` when the manifest lists it (``listed``; an unlisted file is never
    read), else built in memory now."""
    if not wants_index(config, model.n_items):
        return None
    table = model.index_table()
    if table is None:
        getLogger().info(f"{model.backbone_name}'s score head has no index table: every item is scored exactly")
        return None
    path = os.path.join(directory, name)
    if listed:
        return ItemIndex.load(path, config, table.shape[1], model.n_items, fix)
    getLogger().warning(f"{directory} holds no item index for its {model.n_items - 1} items: building one in memory "
                        f"(export the bundle again to store it)")
    return ItemIndex.build(table, config)
