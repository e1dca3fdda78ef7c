"""Auxiliary tasks for backbone training (PMTRec's multi-task setting): extra losses on the sequence representation.

A task is a small head on the backbone's pre-adapter representation with a loss against the training target.
Tasks are named in yaml (``backbone_auxiliary: [category]``); the backbone trainer combines the backbone's own loss
and the tasks' losses with ``backbone_strategy`` (linear, pub, pmtrec) at the preference
``[1, *backbone_auxiliary_weights]`` (normalised). Adding a task is one class here and one line in
``AUXILIARY_TASKS``. The heads are part of the model (saved with the backbone) but never change its scores.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from recbole_paragon.objectives.side_information import item_category_matrix
from recbole_paragon.settings import setting, setting_names
from recbole_paragon.strategies import build_strategy


class CategoryPrediction(nn.Module):
    """Predict the next item's categories (multi-label, ``category_field`` of ``.item``) from the representation."""

    name = "category"

    def __init__(self, config, dataset, hidden_size: int) -> None:
        super().__init__()
        categories = item_category_matrix(dataset, setting(config, "category_field"),
                                          purpose="the category auxiliary task (backbone_auxiliary)")
        self.register_buffer("item_categories", categories, persistent=False)  # derived from the data, not learned
        self.head = nn.Linear(hidden_size, categories.shape[1])

    def loss(self, representation: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the predicted category logits against the target items' categories."""
        return F.binary_cross_entropy_with_logits(self.head(representation), self.item_categories[target_items])


AUXILIARY_TASKS: Dict[str, type] = {CategoryPrediction.name: CategoryPrediction}


def configured_auxiliary(config) -> List[str]:
    """``backbone_auxiliary`` as a list of task names (``--backbone_auxiliary=[category]`` arrives as a string)."""
    names = setting_names(config, "backbone_auxiliary")
    unknown = [n for n in names if n not in AUXILIARY_TASKS]
    if unknown:
        raise ValueError(f"unknown backbone_auxiliary task(s) {unknown}; available: {', '.join(sorted(AUXILIARY_TASKS))}")
    if len(set(names)) != len(names):
        raise ValueError(f"backbone_auxiliary names a task twice: {names}")
    return names


def auxiliary_preference(config, names: Sequence[str]) -> List[float]:
    """Strategy preference over ``[backbone loss, *tasks]``: ``[1, *backbone_auxiliary_weights]`` normalised."""
    weights = setting(config, "backbone_auxiliary_weights")
    weights = [weights] * len(names) if isinstance(weights, (int, float)) else list(weights)
    if len(weights) != len(names):
        raise ValueError(f"backbone_auxiliary_weights needs one weight per auxiliary task {list(names)}, got {weights}")
    raw = [1.0] + [float(w) for w in weights]  # each > 0: the schema's rule
    return [w / sum(raw) for w in raw]


def build_auxiliary_tasks(config, dataset, hidden_size: int) -> nn.ModuleDict:
    """The configured tasks, in order (empty when none are configured)."""
    return nn.ModuleDict({name: AUXILIARY_TASKS[name](config, dataset, hidden_size)
                          for name in configured_auxiliary(config)})


def backbone_strategy(config, names: Sequence[str]):
    """The ``backbone_strategy`` over ``[backbone loss, *tasks]`` (validates its name and settings)."""
    return build_strategy(str(setting(config, "backbone_strategy")), config,
                          auxiliary_preference(config, names))


def check_auxiliary_settings(config, dataset) -> None:
    """Fail before training when a task, its weights, the strategy or the side information it needs is wrong."""
    names = list(build_auxiliary_tasks(config, dataset, hidden_size=1))
    if names:
        backbone_strategy(config, names)

