"""Diversity: differentiable (soft) α-NDCG@K over each user's top-M candidates (Paragon's diversity objective).

Soft rank ``r_i = 1 + Σ_{j≠i} σ((s_j − s_i)/τ)``; an item's gain ``Σ_c y_ic (1−α)^{n_ic}`` is discounted by the
soft count of *higher-ranked* items sharing category c, ``n_ic = Σ_{j≠i} σ((s_j − s_i)/τ)·y_jc``; the position
discount is ``1/log2(1 + r_i)`` and a soft top-K indicator ``σ((K + ½ − r_i)/τ)`` keeps the sum to the first K.
The result is normalised by the greedy ideal α-DCG@K of the user's candidates, so it lies in [0, 1]; as τ → 0 it
equals the exact α-NDCG@K of the hard ranking of the candidates.

Two forms compute the same values: on multi-hot categories ``[B, M, C]`` (:func:`soft_alpha_dcg`,
:func:`ideal_alpha_dcg`, the reference) and on padded category ids ``[B, M, c]`` (:func:`soft_alpha_dcg_ids`,
:func:`~recbole_paragon.objectives.category_index.ideal_alpha_dcg_ids`), where ``n_ic`` is only computed for the
categories item i carries: ``n_{i,k} = Σ_{j≠i} σ((s_j − s_i)/τ)·[j carries cat_k(i)]``, from the soft counts of
the categories that occur among the row's candidates (at most M·c of them, whatever C). The objective uses the
index form: its cost grows with the categories a row's candidates carry, not with the catalogue's C.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from recbole_paragon.objectives.base import CachedBatch, Objective, Scores
from recbole_paragon.objectives.category_index import (distinct_category_ids, first_max, ideal_alpha_dcg_ids,
                                                       local_multi_hot, shared_local_ids)
from recbole_paragon.objectives.side_information import category_share, item_category_tokens
from recbole_paragon.objectives.soft_rank import above, discount, in_top_k
from recbole_paragon.settings import setting, torch_threads


def soft_alpha_dcg(scores: torch.Tensor, categories: torch.Tensor, k: int, alpha: float, tau: float) -> torch.Tensor:
    """Soft α-DCG@k per user: ``scores [B, M]`` of candidates with multi-hot ``categories [B, M, C]``."""
    # [B, i, j]: P(j ranked above i). The diagonal is σ(0) = ½ exactly; it is subtracted instead of masked.
    higher = above(scores, tau)
    rank = 0.5 + higher.sum(-1)
    seen = higher @ categories - 0.5 * categories  # [B, M, C] soft count of higher-ranked items per category
    gain = (categories * torch.exp(seen * math.log(1 - alpha))).sum(-1)
    return (gain * in_top_k(rank, k, tau) * discount(rank)).sum(-1)


def soft_alpha_dcg_ids(scores: torch.Tensor, ids: torch.Tensor, k: int, alpha: float, tau: float) -> torch.Tensor:
    """:func:`soft_alpha_dcg` from distinct padded category ids ``ids [B, M, c]`` (0 = padding) of the candidates.

    The soft counts are those of the multi-hot form restricted to the categories that at least two of a row's
    candidates carry (:func:`shared_local_ids`; a lone category's count is 0 in both forms), read back at each
    item's own categories."""
    higher = above(scores, tau)
    rank = 0.5 + higher.sum(-1)
    local, shared, size = shared_local_ids(ids)
    counts = higher @ local_multi_hot(local, size)  # [B, M, L']: soft count of higher-ranked items per category
    seen = torch.where(shared, counts.gather(2, local) - 0.5, 0.0)  # minus σ(0) of j = i; 0 for a lone category
    gain = ((ids > 0).to(higher.dtype) * torch.exp(seen * math.log(1 - alpha))).sum(-1)
    return (gain * in_top_k(rank, k, tau) * discount(rank)).sum(-1)


def ideal_alpha_dcg(categories: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """Greedy ideal α-DCG@k per user from multi-hot ``categories [B, M, C]`` (the usual α-NDCG normaliser); ties
    within rounding go to the first item (:func:`~recbole_paragon.objectives.category_index.first_max`)."""
    batch, candidates, _ = categories.shape
    counts = torch.zeros(batch, categories.shape[2], device=categories.device)
    taken = torch.zeros(batch, candidates, dtype=torch.bool, device=categories.device)
    total = torch.zeros(batch, device=categories.device)
    for position in range(min(k, candidates)):
        gains = (categories * (1 - alpha) ** counts[:, None, :]).sum(-1).masked_fill(taken, -1.0)
        best_gain, best = first_max(gains)
        total += best_gain.clamp_min(0) / math.log2(position + 2)
        taken[torch.arange(batch), best] = True
        counts += categories[torch.arange(batch), best]
    return total


class Diversity(Objective):
    """Negative soft α-NDCG@K over the backbone's top-M candidates of each user."""

    name = "diversity"
    metric_class = "AlphaNDCG"
    reads = "categories"
    substitute = "embedding_diversity"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.field = setting(config, "category_field")
        self.category_ids = distinct_category_ids(item_category_tokens(dataset, self.field))
        self.alpha = float(setting(config, "alpha_ndcg_alpha"))
        self.k = int(setting(config, "diversity_topk"))
        self.tau = float(setting(config, "diversity_temperature"))
        self.num_candidates = int(setting(config, "diversity_candidates"))
        self.threads = int(setting(config, "compute_threads"))
        if self.num_candidates < self.k:
            raise ValueError(f"diversity_topk={self.k} must be <= diversity_candidates={self.num_candidates}")
        self.candidates = self.num_candidates

        self._ideal_rows: Optional[torch.Tensor] = None

    def side_information_share(self):
        return category_share(self.category_ids), f"items carry a category (category_field={self.field!r})"

    def ideal(self, candidates: torch.Tensor) -> torch.Tensor:
        """Greedy ideal α-DCG@K of each row's candidates, in chunks to bound memory, on ``compute_threads``."""
        ids = self.category_ids.to(candidates.device)
        with torch_threads(self.threads):
            return torch.cat([ideal_alpha_dcg_ids(ids[chunk], self.k, self.alpha)
                              for chunk in candidates[:, :self.num_candidates].split(8192)])

    def prepare(self, cache) -> None:
        self._ideal_rows = self.ideal(cache.candidates)

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        candidates = batch.candidates[:, :self.num_candidates]
        ids = self.category_ids.to(candidates.device).index_select(0, candidates.flatten()).view(
            *candidates.shape, -1)
        dcg = soft_alpha_dcg_ids(scores.of_candidates(batch.candidates, self.num_candidates), ids, self.k, self.alpha,
                                 self.tau)
        if self._ideal_rows is not None and batch.index is not None:
            ideal = self._ideal_rows[batch.index]
        else:
            ideal = self.ideal(batch.candidates)
        return -(dcg / ideal.clamp_min(1e-8)).mean()
