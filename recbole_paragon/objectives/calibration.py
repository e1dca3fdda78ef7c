"""Calibration (Steck, "Calibrated Recommendations", RecSys 2018): the categories of a user's list should follow
those of the user's history. ``p(g|u)``: the user's training interactions, each item's categories sharing its
weight; ``q(g|u)``: the same over the list; miscalibration ``KL(p || q̃)`` with ``q̃ = (1 − α) q + α p`` (α =
``calibration_alpha``, so it stays finite). It conflicts with category diversity by design.

Differentiable through the soft top-K weights of each row's top-M backbone candidates (:mod:`.soft_rank`): ``q``
is their weighted category mix. The loss is the soft KL (lower is better); the metric is ``Miscalibration@K``.
"""
from __future__ import annotations

import torch

from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.objectives.category_index import distinct_category_ids
from recbole_paragon.objectives.side_information import (category_share, item_category_tokens,
                                                         user_category_profiles)
from recbole_paragon.objectives.soft_rank import ListObjective
from recbole_paragon.settings import setting


def list_category_mix(weights: torch.Tensor, ids: torch.Tensor, width: int, k: int) -> torch.Tensor:
    """``q`` ``[B, width]``: the category mix of lists of ``k`` whose items ``[B, M]`` (category ids ``[B, M, c]``)
    carry ``weights``; an item's categories share its weight, uncategorised items dilute the mix. The mix is divided
    by ``max(Σ weights, k)``: soft weights blurred below a full list leave mass missing (no gain from blurring the
    ranks into a smooth average of every candidate), weights above it are scaled to a distribution."""
    share = (ids > 0).float() / (ids > 0).sum(-1, keepdim=True).clamp_min(1)
    mix = torch.zeros(ids.shape[0], width, device=ids.device)
    mix.scatter_add_(1, ids.flatten(1), (weights[:, :, None] * share).flatten(1))
    mix[:, 0] = 0.0
    return mix / weights.sum(1, keepdim=True).clamp_min(float(k))


def miscalibration(profile: torch.Tensor, mix: torch.Tensor, alpha: float) -> torch.Tensor:
    """``KL(p || (1 − α) q + α p)`` per row (users without a profile: 0)."""
    smoothed = (1 - alpha) * mix + alpha * profile
    terms = torch.where(profile > 0, profile * (profile.clamp_min(1e-12).log() - smoothed.clamp_min(1e-12).log()),
                        torch.zeros_like(profile))
    return terms.sum(1)


class Calibration(ListObjective):
    """Soft miscalibration of the top-K against the user's history (smaller is better)."""

    name = "calibration"
    metric_class = "Miscalibration"
    reads = "categories"
    bigger_is_better = False
    settings_prefix = "calibration_"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.field = setting(config, "category_field")
        tokens = item_category_tokens(dataset, self.field, "the calibration objective")
        self.category_ids = distinct_category_ids(tokens)
        self.profiles = user_category_profiles(dataset, self.category_ids)
        self.alpha = float(setting(config, "calibration_alpha"))

    def side_information_share(self):
        return category_share(self.category_ids), f"items carry a category (category_field={self.field!r})"

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        candidates, weights = self.top_k(batch, scores)
        ids = self.category_ids.to(candidates.device)[candidates]
        mix = list_category_mix(weights, ids, self.profiles.shape[1], self.topk)
        return miscalibration(self.profiles.to(candidates.device)[batch.users], mix, self.alpha).mean()
