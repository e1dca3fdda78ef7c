"""Exposure: item-side (provider) fairness, the share of the top-K's position-discounted exposure that reaches the
long tail — every item outside the head, the most popular items holding ``exposure_head_share`` of the training
interactions (Abdollahpouri et al., FLAIRS 2019).

Differentiable through soft ranks of each row's top-M backbone candidates (:mod:`.soft_rank`): a candidate's
exposure is its soft top-K indicator times its position discount, divided by the row's total, so the loss is minus
the soft version of the metric ``TailExposure@K`` and costs ``B·M²``, whatever the catalogue size.
"""
from __future__ import annotations

import torch

from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.objectives.side_information import item_popularity, tail_items
from recbole_paragon.objectives.soft_rank import ListObjective, discount, in_top_k, soft_rank
from recbole_paragon.settings import setting


def soft_exposure(scores: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Each candidate's soft share of a top-``k`` list's discounted exposure ``[B, M]``."""
    return exposure_shares(soft_rank(scores, tau), k, tau)


def exposure_shares(rank: torch.Tensor, k: int, tau: float) -> torch.Tensor:
    """Soft discounted exposure of candidates of soft ``rank`` in a top-``k`` list, each row summing to 1 (so the
    loss cannot gain by blurring ranks into more or less total exposure)."""
    exposure = in_top_k(rank, k, tau) * discount(rank)
    return exposure / exposure.sum(1, keepdim=True).clamp_min(1e-12)


class Exposure(ListObjective):
    """Minus the soft discounted share of the top-K that goes to long-tail items."""

    name = "exposure"
    metric_class = "TailExposure"
    settings_prefix = "exposure_"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.tail = tail_items(item_popularity(dataset), float(setting(config, "exposure_head_share")))

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        candidates, rank = self.ranked(batch, scores)
        exposure = exposure_shares(rank, self.topk, self.tau)
        return -(exposure * self.tail.to(candidates.device)[candidates].float()).sum(1).mean()
