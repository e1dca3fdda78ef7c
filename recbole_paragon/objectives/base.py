"""What an objective is: a differentiable loss on a batch of cached users, given the adapted scores."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class CachedBatch:
    """A batch of users drawn from a :class:`~recbole_paragon.trainer.cache.RepresentationCache`."""

    hidden: torch.Tensor  # [B, H] backbone representation before the adapter
    target: torch.Tensor  # [B] next item
    users: torch.Tensor  # [B] user ids
    candidates: Optional[torch.Tensor] = None  # [B, M] backbone's top-M items (diversity)
    index: Optional[torch.Tensor] = None  # [B] rows of the cache the batch was drawn from


class Objective(ABC):
    """One objective of the preference. Subclasses set ``name``, the RecBole metric that measures the objective
    (``metric``, ``metric_class``, ``bigger_is_better``) and implement :meth:`loss` (lower is better)."""

    name: str = ""
    metric_class: str = ""  # RecBole metric class name, e.g. "NDCG"
    bigger_is_better: bool = True

    def __init__(self, config, dataset, model) -> None:
        self.config = config
        self.model = model

    @classmethod
    def metric(cls, k: int = 10) -> str:
        """Key of the objective's metric in RecBole results, e.g. ``ndcg@10``."""
        return f"{cls.metric_class.lower()}@{k}"

    def prepare(self, cache) -> None:
        """Precompute per-row constants for the training cache (called once before tuning)."""

    @abstractmethod
    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Scalar loss from adapted representations ``rows [B, H]`` and their all-item ``scores [B, n_items]``."""
