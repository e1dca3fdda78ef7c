"""Item categories and user groups read from RecBole's ``.item`` / ``.user`` features, with clear errors.

Shared by the objectives (diversity, fairness) and the metrics (AlphaNDCG, ILD, CategoryCoverage, GroupGap).
"""
from __future__ import annotations

from typing import Optional

import torch


def _feature(dataset, field: Optional[str], kind: str, config_key: str, purpose: str) -> torch.Tensor:
    features = dataset.item_feat if kind == "item" else dataset.user_feat
    columns = [] if features is None else list(features.columns)
    if not field or field not in columns:
        name = getattr(dataset, "dataset_name", "?")
        raise ValueError(
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
