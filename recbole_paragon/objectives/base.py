"""What an objective is: a differentiable loss on a batch of cached users, given the adapted scores."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import torch

from recbole_paragon.settings import setting


def first_topk(config) -> int:
    """The first cut-off of the config's ``topk`` (RecBole allows one number or a list): the K of every ``@K``."""
    topk = setting(config, "topk")
    return int(topk[0] if isinstance(topk, (list, tuple)) else topk)


@dataclass
class CachedBatch:
    """A batch of users drawn from a :class:`~recbole_paragon.model.cache.RepresentationCache`."""

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
        self.topk = first_topk(config)

    def metric(self) -> str:
        """Key of the objective's metric in RecBole results at the config's first ``topk``, e.g. ``ndcg@10``."""
        return f"{self.metric_class.lower()}@{self.topk}"

    def prepare(self, cache) -> None:
        """Precompute per-row constants for the training cache (called once before tuning)."""

    @abstractmethod
    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Scalar loss from adapted representations ``rows [B, H]`` and their all-item ``scores [B, n_items]``."""
