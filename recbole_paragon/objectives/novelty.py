"""Novelty: mean self-information ``−log2 p(i)`` of the recommended items, ``p(i)`` an item's share of the training
interactions (Zhou et al., PNAS 2010): lists of less-known items are more novel.

Differentiable through the soft top-K indicator of each row's top-M backbone candidates (:mod:`.soft_rank`); each
item's self-information is divided by the largest possible one, so the loss (minus the soft mean) lies in
[−1, 0]. The metric ``Novelty@K`` reports the mean in bits.
"""
from __future__ import annotations

import torch

from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.objectives.side_information import item_popularity, self_information
from recbole_paragon.objectives.soft_rank import ListObjective


class Novelty(ListObjective):
    """Minus the soft mean normalised self-information of the top-K."""

    name = "novelty"
    metric_class = "Novelty"
    settings_prefix = "novelty_"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        information = self_information(item_popularity(dataset))
        self.information = information / information.max().clamp_min(1e-12)

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        candidates, weight = self.top_k(batch, scores)
        weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-12)  # a soft mean: no gain from blurring ranks
        return -(weight * self.information.to(candidates.device)[candidates]).sum(1).mean()
