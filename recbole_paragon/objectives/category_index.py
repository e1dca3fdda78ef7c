"""Item categories in index form: padded category ids ``[..., c]`` (``c`` = most categories of one item, 0 = padding)
instead of catalogue-wide multi-hots ``[..., C]``.

Items carry a handful of categories while a catalogue may have a thousand, so the category math of the diversity
loss, the metrics and MMR works on ids: which items *share* a category is a comparison of ids, and the counts a
greedy α-DCG keeps are over the categories that occur in one row, renumbered ``1..L`` per row (:func:`row_local_ids`).
Costs then grow with ``c`` and the list length, not with the number of categories.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

Tensor = torch.Tensor


def distinct_category_ids(ids: Tensor) -> Tensor:
    """Padded ids ``[..., c]`` with repeats within a row dropped, largest id first, trimmed to the widest row
    (at least one column). A 1-d tensor (one ``token`` per item) becomes ``[n, 1]``."""
    ids = ids.long()
    ids = ids[:, None] if ids.dim() == 1 else ids
    ordered = ids.sort(-1, descending=True).values
    repeat = torch.zeros_like(ordered, dtype=torch.bool)
    repeat[..., 1:] = ordered[..., 1:] == ordered[..., :-1]
    ordered = ordered.masked_fill(repeat, 0).sort(-1, descending=True).values
    width = max(1, int((ordered > 0).sum(-1).max())) if ordered.numel() else 1
    return ordered[..., :width]


def dense_to_ids(hot: Tensor) -> Tensor:
    """Multi-hot indicators ``[N, C]`` (0 or 1) -> padded ids ``[N, c]``: column ``j`` becomes id ``j + 1``."""
    if hot.numel() and not bool(((hot == 0) | (hot == 1)).all()):
        raise ValueError("category indicators must be 0 or 1 (weighted categories are not supported)")
    columns = torch.arange(1, hot.shape[-1] + 1, device=hot.device).expand_as(hot)
    return distinct_category_ids(torch.where(hot > 0, columns, torch.zeros_like(columns)))


def row_local_ids(ids: Tensor) -> Tuple[Tensor, int]:
    """Ids for per-row counts: ``(local, width)`` with ``local`` of ``ids``' shape, 0 for padding, one distinct value
    ``< width`` per distinct category of a row, and ``width ≤ 1 + ids[r].numel()``, whatever the number of
    categories in the catalogue. Ids that are that narrow already are kept; wider ones are renumbered ``1..L_r``
    per row (in id order)."""
    rows = ids.shape[0]
    slots = ids[0].numel() if rows else 0
    top = int(ids.max()) if ids.numel() else 0
    if top <= slots:
        return ids, top + 1
    flat = torch.cat([torch.zeros(rows, 1, dtype=ids.dtype, device=ids.device), ids.reshape(rows, -1)], 1)
    values, order = flat.sort(1)
    new = torch.ones_like(values, dtype=torch.bool)
    new[:, 1:] = values[:, 1:] != values[:, :-1]
    ranks = new.long().cumsum(1) - 1  # the prepended 0 sorts first: padding is local id 0
    local = torch.empty_like(ranks).scatter_(1, order, ranks)
    return local[:, 1:].reshape(ids.shape), int(ranks[:, -1].max()) + 1


def local_multi_hot(local: Tensor, size: int) -> Tensor:
    """Row-local ids ``[B, M, c]`` (from :func:`row_local_ids`) -> float indicators ``[B, M, size]`` over the
    categories of each row only (column 0, the padding, always zero)."""
    hot = torch.zeros(*local.shape[:2], size, device=local.device)
    hot.scatter_(2, local, 1.0)
    hot[:, :, 0] = 0.0
    return hot


def shares_category(ids: Tensor) -> Tensor:
    """``[B, M, c]`` distinct padded ids of M items per row -> bool ``[B, M, c, M]``: whether item ``j`` carries
    the category in slot ``k`` of item ``i`` (False for padding slots; an item shares its own categories)."""
    batch, items, width = ids.shape
    local, size = row_local_ids(ids)
    table = torch.zeros(batch, size, items, dtype=torch.bool, device=ids.device)
    table.scatter_(1, local.transpose(1, 2), True)  # table[b, local[b, j, l], j]: item j carries that category
    table[:, 0] = False
    index = local.reshape(batch, items * width, 1).expand(batch, items * width, items)
    return table.gather(1, index).view(batch, items, width, items)


def first_max(values: Tensor, tolerance: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """``(value, index)`` per row of the first entry within ``tolerance`` (relative) of the row's maximum: ties that
    differ only by rounding, which the multi-hot and the index form produce differently, break the same way."""
    best = values.max(-1, keepdim=True).values
    index = (values >= best - tolerance * best.abs().clamp_min(1.0)).to(torch.uint8).argmax(-1)
    return values.gather(-1, index[..., None])[..., 0], index


def ideal_alpha_dcg_ids(ids: Tensor, k: int, alpha: float) -> Tensor:
    """Greedy ideal α-DCG@k per row of ``[B, M, c]`` distinct padded ids: each position takes the item with the
    largest marginal gain ``Σ_slots (1−α)^{count}`` (first such item on ties, :func:`first_max`), as the multi-hot
    form does."""
    batch, candidates, width = ids.shape
    local, size = row_local_ids(ids)
    valid = (ids > 0).float()
    counts = torch.zeros(batch, size, device=ids.device)
    taken = torch.zeros(batch, candidates, dtype=torch.bool, device=ids.device)
    total = torch.zeros(batch, device=ids.device)
    rows = torch.arange(batch, device=ids.device)
    slots = local.transpose(1, 2).reshape(batch, -1)  # [B, c·M]: the slot sum below runs over contiguous rows
    for position in range(min(k, candidates)):
        decay = (1 - alpha) ** counts  # [B, width]: one power per category of the row, not per slot
        decay[:, 0] = 0.0  # padding slots gain nothing
        gains = decay.gather(1, slots).view(batch, width, candidates).sum(1).masked_fill(taken, -1.0)
        best_gain, best = first_max(gains)
        total += best_gain.clamp_min(0) / math.log2(position + 2)
        taken[rows, best] = True
        counts.scatter_add_(1, local[rows, best], valid[rows, best])
    return total
