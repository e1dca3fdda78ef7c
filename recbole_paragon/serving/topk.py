"""Top-K of score rows: every item scored exactly (the default), leaving out padding and seen items."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

TopK = Tuple[List[List[int]], List[List[float]]]


def mask_seen(scores: torch.Tensor, seen: Optional[Sequence[torch.Tensor]]) -> torch.Tensor:
    """``scores [B, n_items]`` with the padding item and each row's ``seen`` items at ``-inf`` (in place)."""
    scores[:, 0] = -torch.inf
    if seen:
        rows = torch.cat([torch.full((len(s),), i, dtype=torch.long) for i, s in enumerate(seen)])
        scores[rows, torch.cat(list(seen))] = -torch.inf
    return scores


def finite_rows(indices: torch.Tensor, values: torch.Tensor) -> TopK:
    """Rows of a top-K as lists, without the ``-inf`` entries (rows get shorter when few items are left)."""
    items, scores = [], []
    for row_items, row_scores in zip(indices.tolist(), values.tolist()):
        keep = [j for j, s in enumerate(row_scores) if s != float("-inf")]
        items.append([row_items[j] for j in keep])
        scores.append([row_scores[j] for j in keep])
    return items, scores


def exact_top_k(scores: torch.Tensor, seen: Optional[Sequence[torch.Tensor]], k: int) -> TopK:
    """The best ``k`` items per row of all-item ``scores`` (padding and ``seen`` left out)."""
    top = mask_seen(scores, seen).topk(min(k, scores.shape[1] - 1), dim=1)
    return finite_rows(top.indices, top.values)


def index_top_k(index, model, adapted: torch.Tensor, seen: Optional[Sequence[torch.Tensor]], k: int,
                extra: int) -> TopK:
    """The best ``k`` items per row from the item index (``bundle/index.py``), re-scored exactly by the model's head,
    padding and ``seen`` left out. Every row gets at least ``k + extra`` unseen candidates: first as many as one
    search of the index's breadth returns anyway, then, for rows whose seen items took too many of them, a search
    for ``k + extra`` + all their seen items."""
    queries = model.index_query(adapted)
    wanted = k + extra + (max(len(s) for s in seen) if seen else 0)
    candidates = index.candidates(queries, max(k + extra, min(wanted, index.expansion)))
    valid = _unseen(candidates, seen)
    short = torch.nonzero(valid.sum(1) < k + extra).flatten().tolist() if wanted > candidates.shape[1] else []
    if short:
        again = index.candidates(queries[short], wanted)
        width = max(candidates.shape[1], again.shape[1])
        candidates = torch.nn.functional.pad(candidates, (0, width - candidates.shape[1]), value=-1)
        candidates[short] = torch.nn.functional.pad(again, (0, width - again.shape[1]), value=-1)
        valid = _unseen(candidates, seen)
    scores = model.score_items(adapted, candidates.clamp(min=0)).masked_fill(~valid, -torch.inf)
    top = scores.topk(min(k, scores.shape[1]), dim=1)
    return finite_rows(candidates.gather(1, top.indices), top.values)


def _unseen(candidates: torch.Tensor, seen: Optional[Sequence[torch.Tensor]]) -> torch.Tensor:
    """``[B, C]``: a real item (not padding, not ``-1``) the row has not seen."""
    valid = candidates > 0
    if seen:
        valid &= ~torch.stack([torch.isin(row, s) for row, s in zip(candidates, seen)])
    return valid
