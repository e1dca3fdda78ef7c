"""What an objective is: a differentiable loss on a batch of cached users, given the adapted scores (computed only
for the items the objectives read)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Tuple

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
    sampled: Optional[torch.Tensor] = None  # [B, 1 + n] items each row is ranked among (sampled evaluation); None: all


class Scores:
    """The adapted scores of a batch, computed where they are read: every item (:attr:`full`, ``[B, n_items]``) or
    given items per row (:meth:`of`, ``[B, n]``). An objective that reads only candidates keeps the step's cost
    independent of the catalogue size; once ``full`` exists, :meth:`of` gathers from it.

    ``model`` is a ``Paragon<Backbone>`` (``score_representation``, ``score_items``, ``n_items``); ``full``, when
    already computed (or when there is no model), is used as it is.
    """

    def __init__(self, rows: torch.Tensor, model=None, full: Optional[torch.Tensor] = None) -> None:
        if model is None and full is None:
            raise ValueError("Scores needs the model that scores the rows, or the full score matrix")
        self.rows, self.model, self._full = rows, model, full
        self._candidates: Optional[torch.Tensor] = None
        self._candidate_scores: Optional[torch.Tensor] = None

    @property
    def full(self) -> torch.Tensor:
        """All-item scores ``[B, n_items]`` (computed on first use)."""
        if self._full is None:
            self._full = self.model.score_representation(self.rows)
        return self._full

    @property
    def num_items(self) -> int:
        return int(self._full.shape[1]) if self._full is not None else int(self.model.n_items)

    def of(self, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n]`` of ``items [B, n]`` (item ids per row)."""
        if self._full is not None:
            return self._full.gather(1, items)
        return self.model.score_items(self.rows, items)

    def of_candidates(self, candidates: torch.Tensor, count: int) -> torch.Tensor:
        """Scores of ``candidates[:, :count]`` (a batch's cached top items). Every column of ``candidates`` is scored
        on the first call and reused, so objectives reading the same candidates share one scoring."""
        if self._candidates is not candidates:
            self._candidates, self._candidate_scores = candidates, self.of(candidates)
        return self._candidate_scores[:, :count]


class Objective(ABC):
    """One objective of the preference. Subclasses set ``name``, the RecBole metric that measures the objective
    (``metric``, ``metric_class``, ``bigger_is_better``) and implement :meth:`loss` (lower is better)."""

    name: str = ""
    metric_class: str = ""  # RecBole metric class name, e.g. "NDCG"
    bigger_is_better: bool = True
    candidates: int = 0  # the backbone's top-N items per row this objective reads from the cache (0: none)
    settings_prefix: str = ""  # its settings' prefix: they enter the bank's fingerprint when it is configured
    reads: str = ""  # the side information it needs beyond the interactions: "categories" (items), "groups" (users)
    substitute: str = ""  # the objective that serves the same purpose without this one's side information

    def side_information_share(self) -> Optional[Tuple[float, str]]:
        """``(share, what)``: how much of the data carries the side information this objective reads (e.g. the
        share of items with a category); None when it reads none."""
        return None

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
    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        """Scalar loss from adapted representations ``rows [B, H]`` and their :class:`Scores`."""
