"""Popularity metrics over the training split's interactions: ``TailExposure@K`` (the position-discounted share of
the top-K that goes to long-tail items, see :mod:`recbole_paragon.objectives.exposure`) and ``Novelty@K`` (mean
self-information ``−log2 p(i)`` of the top-K, in bits)."""
from __future__ import annotations

from typing import Dict

import torch
from recbole.evaluator.base_metric import AbstractMetric
from recbole.utils import EvaluatorType

from recbole_paragon.metrics.category import discount_at
from recbole_paragon.objectives.side_information import self_information, tail_items
from recbole_paragon.settings import setting

Tensor = torch.Tensor


def tail_exposure_at_k(topk_items: Tensor, tail: Tensor, k: int) -> Tensor:
    """Per-user discounted share of the top-k on ``tail`` items (a bool mask ``[n_items]``)."""
    weights = discount_at(k, topk_items.device)
    return (tail.to(topk_items.device)[topk_items[:, :k]].float() * weights).sum(1) / weights.sum()


def novelty_at_k(topk_items: Tensor, information: Tensor, k: int) -> Tensor:
    """Per-user mean self-information (bits) of the top-k."""
    return information.to(topk_items.device)[topk_items[:, :k]].mean(1)


class _PopularityMetric(AbstractMetric):
    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.items", "data.item_popularity"]

    def __init__(self, config):
        super().__init__(config)
        self.topk = config["topk"]
        self.config = config

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        items, popularity = dataobject.get("rec.items"), dataobject.get("data.item_popularity")
        name = type(self).__name__.lower()
        return {f"{name}@{k}": round(float(self.per_user(items, popularity, k).mean()), self.decimal_place)
                for k in self.topk}

    def per_user(self, topk_items: Tensor, popularity: Tensor, k: int) -> Tensor:
        raise NotImplementedError


class TailExposure(_PopularityMetric):
    """Discounted share of the top-K on items outside the head (the most popular items holding
    ``exposure_head_share`` of the training interactions)."""

    def per_user(self, topk_items: Tensor, popularity: Tensor, k: int) -> Tensor:
        return tail_exposure_at_k(topk_items, tail_items(popularity, float(setting(self.config,
                                                                                    "exposure_head_share"))), k)


class Novelty(_PopularityMetric):
    """Mean self-information ``−log2 p(i)`` (bits) of the top-K items, ``p`` from the training interactions."""

    def per_user(self, topk_items: Tensor, popularity: Tensor, k: int) -> Tensor:
        return novelty_at_k(topk_items, self_information(popularity), k)
