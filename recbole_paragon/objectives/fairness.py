"""Fairness: NDCG parity between user groups (``group_by``: a ``.user`` field, activity, popularity or length).

Each user's soft NDCG is ``1/log2(1 + r)`` with the soft rank ``r = 1 + Σ_j σ((s_j − s_target)/τ)`` of the next item
among all items. ``fairness_loss`` chooses what is minimised over the users of a batch whose group is known:

* ``gap`` — the spread (max − min) of the group means (for two groups the absolute gap). It can be closed by
  lowering the better group, i.e. by levelling down.
* ``worst_group`` — ``1 −`` the mean of the worst-off group: it only pays to lift that group (Sagawa et al.'s
  group DRO objective), so the gap closes from below.
* ``cvar`` — the mean of the worst ``fairness_cvar_alpha`` fraction of per-user losses ``1 − NDCG``
  (conditional value at risk): the worst-served users, whatever their group.
"""
from __future__ import annotations

import math

import torch

from recbole_paragon.objectives.base import CachedBatch, Objective, Scores
from recbole_paragon.objectives.user_groups import user_groups
from recbole_paragon.settings import setting


def soft_ndcg(scores: torch.Tensor, target: torch.Tensor, tau: float) -> torch.Tensor:
    """Differentiable NDCG of one relevant item per user: ``scores [B, n_items]``, ``target [B]``."""
    target_scores = scores.gather(1, target[:, None])
    above = torch.sigmoid((scores[:, 1:] - target_scores) / tau).sum(-1) - 0.5  # item 0 is padding; minus self
    return 1.0 / torch.log2(2 + above)


def group_means(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` per group present in ``groups`` (in group-id order)."""
    return torch.stack([values[groups == g].mean() for g in torch.unique(groups)])


def group_spread(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """max − min over groups of the mean of ``values`` (0 when fewer than two groups are present)."""
    if torch.unique(groups).numel() < 2:
        return values.sum() * 0.0
    means = group_means(values, groups)
    return means.max() - means.min()


def worst_group_loss(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """``1 −`` the smallest group mean of ``values`` (0 for an empty batch)."""
    if values.numel() == 0:
        return values.sum() * 0.0
    return 1.0 - group_means(values, groups).min()


def cvar_loss(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mean of the largest ``⌈alpha·B⌉`` per-user losses ``1 − values``."""
    if values.numel() == 0:
        return values.sum() * 0.0
    losses = 1.0 - values
    return losses.topk(max(1, math.ceil(alpha * losses.numel()))).values.mean()


class Fairness(Objective):
    name = "fairness"
    metric_class = "GroupGap"
    reads = "groups"
    bigger_is_better = False

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.groups = user_groups(config, dataset)
        self.user_groups = self.groups.ids
        self.tau = float(setting(config, "fairness_temperature"))
        self.kind = str(setting(config, "fairness_loss"))
        self.cvar_alpha = float(setting(config, "fairness_cvar_alpha"))

    def side_information_share(self):
        known = self.user_groups[1:] > 0
        return float(known.float().mean()) if len(known) else 0.0, f"users have a group (group_by={self.groups.method!r})"

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        groups = self.user_groups.to(batch.users.device)[batch.users]
        known = groups > 0
        ndcg = soft_ndcg(scores.full[known], batch.target[known], self.tau)  # the target's rank among all items
        if self.kind == "gap":
            return group_spread(ndcg, groups[known])
        if self.kind == "worst_group":
            return worst_group_loss(ndcg, groups[known])
        return cvar_loss(ndcg, self.cvar_alpha)
