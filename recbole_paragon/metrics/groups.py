"""User-group metrics: ``GroupGap@K``, ``GroupNDCG@K`` (NDCG of each user group) and ``WorstGroupNDCG@K``.

``groups`` are group ids from :func:`~recbole_paragon.objectives.user_groups.user_groups` (``group_by``, computed on
the training split), 0 = unknown (such users are left out of group comparisons).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from recbole.evaluator.base_metric import TopkMetric

from recbole_paragon.metrics.category import discount_at

Tensor = torch.Tensor


def ndcg_at_k(topk_hits: Tensor, positives_count: Tensor, k: Optional[int] = None) -> Tensor:
    """Per-user NDCG@k from hit indicators ``[U, ≥k]`` and each user's number of positives (0 positives -> 0)."""
    k = topk_hits.shape[1] if k is None else k
    discount = discount_at(k, topk_hits.device)
    dcg = (topk_hits[:, :k].float() * discount).sum(1)
    idcg = discount.cumsum(0)[positives_count.long().clamp(1, k) - 1]
    return torch.where(positives_count > 0, dcg / idcg, torch.zeros_like(dcg))


def group_means(per_user_values: Tensor, groups: Tensor) -> Dict[int, float]:
    """Mean per-user value of each group present (group 0, unknown, ignored)."""
    known = groups > 0
    return {int(g): float(per_user_values[known & (groups == g)].float().mean()) for g in groups[known].unique()}


def group_gap(per_user_values: Tensor, groups: Tensor) -> float:
    """Max − min over groups of the mean per-user value (|difference| for two groups); group 0 (missing) ignored."""
    means = list(group_means(per_user_values, groups).values())
    return max(means) - min(means) if len(means) > 1 else 0.0


def _group_names(dataobject, groups: Tensor) -> Dict[int, str]:
    """Names of the group ids (collected with the groups; the ids themselves when none were)."""
    if "data.user_group_names" in dataobject:
        return dataobject.get("data.user_group_names")
    return {int(g): str(int(g)) for g in torch.unique(groups) if g > 0}


class _GroupMetric(TopkMetric):
    """NDCG@K per user group (``group_by``); every group must have evaluated users."""

    metric_need = ["rec.topk", "rec.users", "data.user_groups"]

    def group_ndcg(self, dataobject, k: int) -> Dict[str, float]:
        hits, positives = (torch.from_numpy(array) for array in self.used_info(dataobject))
        groups = dataobject.get("data.user_groups")
        names = _group_names(dataobject, groups)
        means = group_means(ndcg_at_k(hits, positives, k), groups[dataobject.get("rec.users")])
        missing = [names[g] for g in names if g not in means]
        if missing:
            raise ValueError(f"user group(s) {missing} have no users in this evaluation; choose another "
                             "group_quantile or group_by")
        return {names[g]: means[g] for g in names}


class GroupGap(_GroupMetric):
    """|NDCG@K of group A − NDCG@K of group B| for the user groups (max − min of the group means for more
    groups). Smaller is better."""

    smaller = True

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        result = {}
        for k in self.topk:
            means = list(self.group_ndcg(dataobject, k).values())
            result[f"groupgap@{k}"] = round(max(means) - min(means) if len(means) > 1 else 0.0, self.decimal_place)
        return result


class GroupNDCG(_GroupMetric):
    """NDCG@K of each user group, as ``groupndcg@K[<group name>]``: which group a change moved."""

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        return {f"groupndcg@{k}[{name}]": round(value, self.decimal_place)
                for k in self.topk for name, value in self.group_ndcg(dataobject, k).items()}


class WorstGroupNDCG(_GroupMetric):
    """NDCG@K of the worst-served user group (bigger is better: fairness without levelling down)."""

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        return {f"worstgroupndcg@{k}": round(min(self.group_ndcg(dataobject, k).values()), self.decimal_place)
                for k in self.topk}
