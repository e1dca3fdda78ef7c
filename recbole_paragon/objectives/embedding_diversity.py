"""Embedding diversity: intra-list distance over the backbone's own item embeddings (1 − cosine), the usual
diversity when nobody labelled item categories (Ziegler et al. 2005 measure distance on a taxonomy; embedding ILD
is the common substitute).

The embeddings are the frozen backbone's score-head item table (:meth:`~recbole_paragon.model.paragon.ParagonMixin.
item_vectors`), fixed while adapters are tuned. With soft top-K weights ``a`` of each row's top-M candidates
(:mod:`.soft_rank`), the soft ILD is ``Σ_{i≠j} a_i a_j d_ij / Σ_{i≠j} a_i a_j``; the loss is minus it. The metric
``EmbeddingILD@K`` is the mean pairwise distance of the top-K.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.objectives.soft_rank import ListObjective


def pairwise_distance(unit: torch.Tensor) -> torch.Tensor:
    """``1 − cos`` between the unit vectors of each row's items ``[B, M, H]`` -> ``[B, M, M]``."""
    return 1.0 - unit @ unit.transpose(1, 2)


def soft_ild(weights: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """Weighted mean off-diagonal distance per row: ``Σ_{i≠j} a_i a_j d_ij / Σ_{i≠j} a_i a_j``."""
    pair = weights[:, :, None] * weights[:, None, :]
    pair = pair - torch.diag_embed(weights * weights)
    return (pair * distance).sum((1, 2)) / pair.sum((1, 2)).clamp_min(1e-12)


class EmbeddingDiversity(ListObjective):
    """Minus the soft intra-list cosine distance of the top-K over the backbone's item embeddings."""

    name = "embedding_diversity"
    metric_class = "EmbeddingILD"
    settings_prefix = "embedding_diversity_"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self._unit = None if model is None else F.normalize(model.item_vectors().detach(), dim=-1)

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        if self._unit is None:
            self._unit = F.normalize(scores.model.item_vectors().detach(), dim=-1)
        candidates, weights = self.top_k(batch, scores)
        return -soft_ild(weights, pairwise_distance(self._unit[candidates])).mean()
