"""Item categories and user groups read from RecBole's ``.item`` / ``.user`` features, with clear errors.

Shared by the objectives (diversity, fairness) and the metrics (AlphaNDCG, ILD, CategoryCoverage, GroupGap).
"""
from __future__ import annotations

from typing import Optional

import torch


class MissingSideInformation(ValueError):
    """The dataset lacks a field an objective or a metric reads."""


def _feature(dataset, field: Optional[str], kind: str, config_key: str, purpose: str) -> torch.Tensor:
    features = dataset.item_feat if kind == "item" else dataset.user_feat
    columns = [] if features is None else list(features.columns)
    if not field or field not in columns:
        name = getattr(dataset, "dataset_name", "?")
        raise MissingSideInformation(
            f"{purpose} needs the {kind} feature {config_key}={field!r}, but dataset '{name}' has no such field "
            f"(its .{kind} fields: {columns or 'none loaded'}): set '{config_key}' to a token/token_seq field of "
            f"the .{kind} file (loaded by load_col), or drop what needs it"
        )
    return features[field]


def item_category_tokens(dataset, field: Optional[str], purpose: str = "the diversity objective") -> torch.Tensor:
    """Padded category ids ``[n_items, C]`` of every item (row = item id, 0 = padding)."""
    tokens = _feature(dataset, field, "item", "category_field", purpose).long()
    return tokens[:, None] if tokens.dim() == 1 else tokens


def multi_hot(tokens: torch.Tensor, num_ids: Optional[int] = None) -> torch.Tensor:
    """``[..., C]`` padded category ids -> ``[..., num_ids − 1]`` float indicators (padding id 0 dropped)."""
    num_ids = int(tokens.max()) + 1 if num_ids is None else num_ids
    hot = torch.zeros(*tokens.shape[:-1], num_ids, device=tokens.device)
    return hot.scatter_(-1, tokens, 1.0)[..., 1:]


def item_category_matrix(dataset, field: Optional[str], purpose: str = "the diversity objective") -> torch.Tensor:
    """Multi-hot ``[n_items, n_categories]`` float matrix (padding category 0 dropped)."""
    return multi_hot(item_category_tokens(dataset, field, purpose))


def user_group_vector(dataset, field: Optional[str], purpose: str = "the fairness objective") -> torch.Tensor:
    """Group id per user id ``[n_users]`` (0 = unknown / padding)."""
    groups = _feature(dataset, field, "user", "group_field", purpose)
    if groups.dim() != 1:
        raise ValueError(f"group_field={field!r} must be a single-token (token) field of the .user file")
    return groups.long()


def item_field_names(dataset, field_type: str) -> list:
    """Names of the ``.item`` fields of RecBole type ``field_type`` (e.g. ``token_seq``) the dataset loaded."""
    features = dataset.item_feat
    if features is None:
        return []
    return [name for name in features.columns
            if name != dataset.iid_field and str(dataset.field2type.get(name, "")).lower().endswith(field_type)]


def has_item_field(dataset, field: Optional[str]) -> bool:
    return bool(field) and dataset.item_feat is not None and field in dataset.item_feat.columns


def item_popularity(dataset) -> torch.Tensor:
    """Interactions per item id in ``dataset`` (the training split's: what popularity means here) ``[n_items]``."""
    items = dataset.inter_feat[dataset.iid_field].long()
    return torch.bincount(items, minlength=dataset.item_num).float()


def tail_items(popularity: torch.Tensor, head_share: float) -> torch.Tensor:
    """Long-tail mask ``[n_items]``: every item outside the head, the most popular items that together hold
    ``head_share`` of the interactions (the fewest that reach it); item 0 (padding) is in neither."""
    order = popularity.argsort(descending=True, stable=True)
    before = popularity[order].cumsum(0) - popularity[order]  # interactions of the more popular items
    head = order[before < head_share * float(popularity.sum())]
    tail = torch.ones(len(popularity), dtype=torch.bool)
    tail[head] = False
    tail[0] = False
    return tail


def self_information(popularity: torch.Tensor) -> torch.Tensor:
    """``−log2 p(i)`` of each item, ``p(i)`` its share of the interactions (an item never seen counts once)."""
    return torch.log2(popularity.sum().clamp_min(1.0)) - torch.log2(popularity.clamp_min(1.0))


def category_share(category_ids: torch.Tensor) -> float:
    """Share of the real items (id >= 1) that carry at least one category."""
    return float((category_ids[1:] > 0).any(-1).float().mean()) if len(category_ids) > 1 else 0.0


def user_category_profiles(dataset, category_ids: torch.Tensor) -> torch.Tensor:
    """Each user's category distribution over the interactions of ``dataset`` ``[n_users, n_ids]`` (column = category
    id, 0 unused): an item's categories share its weight; rows of users without categorised items are zero."""
    users = dataset.inter_feat[dataset.uid_field].long()
    ids = category_ids[dataset.inter_feat[dataset.iid_field].long()]  # [N, c]
    counts = (ids > 0).sum(-1, keepdim=True).clamp_min(1)
    weights = (ids > 0).float() / counts
    width = int(category_ids.max()) + 1 if category_ids.numel() else 1
    profile = torch.zeros(dataset.user_num, width)
    profile.index_put_((users[:, None].expand_as(ids), ids), weights, accumulate=True)
    profile[:, 0] = 0.0
    total = profile.sum(1, keepdim=True)
    return torch.where(total > 0, profile / total.clamp_min(1e-12), profile)
