"""Fairness: gap in (soft) NDCG between user groups, e.g. gender in ml-100k's ``.user``.

Each user's soft NDCG is ``1/log2(1 + r)`` with the soft rank ``r = 1 + Σ_j σ((s_j − s_target)/τ)`` of the next
item among all items; the loss is the spread (max − min) of the group means present in the batch, which for two
groups is the absolute gap. Smaller is fairer.
"""
from __future__ import annotations

import torch

from recbole_paragon.objectives.base import CachedBatch, Objective
from recbole_paragon.settings import setting
from recbole_paragon.objectives.side_information import user_group_vector


def soft_ndcg(scores: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Differentiable NDCG of one relevant item per user: ``scores [B, n_items]``, ``target [B]``."""
    target_scores = scores.gather(1, target[:, None])
    above = torch.sigmoid((scores[:, 1:] - target_scores) / tau).sum(-1) - 0.5  # item 0 is padding; minus self
    return 1.0 / torch.log2(2 + above)


def group_spread(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """max − min over groups of the mean of ``values`` (0 when fewer than two groups are present)."""
    present = torch.unique(groups)
    if present.numel() < 2:
        return values.sum() * 0.0
    means = torch.stack([values[groups == g].mean() for g in present])
    return means.max() - means.min()


class Fairness(Objective):
    name = "fairness"
    metric_class = "GroupGap"
    bigger_is_better = False

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.user_groups = user_group_vector(dataset, setting(config, "group_field"))
        self.tau = float(setting(config, "fairness_temperature"))
        if self.tau <= 0:
            raise ValueError(f"fairness_temperature must be > 0, got {self.tau}")

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        groups = self.user_groups.to(batch.users.device)[batch.users]
        known = groups > 0
        return group_spread(soft_ndcg(scores[known], batch.target[known], self.tau), groups[known])
