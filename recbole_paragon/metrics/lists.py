"""List metrics that need more than categories: ``EmbeddingILD@K`` (mean pairwise ``1 − cos`` of the top-K items'
embeddings, the evaluated model's item table) and ``Miscalibration@K`` (Steck's ``KL(p || q̃)`` between the user's
history categories and the list's; smaller is better)."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F
from recbole.evaluator.base_metric import AbstractMetric
from recbole.utils import EvaluatorType

from recbole_paragon.metrics.collector import item_embeddings
from recbole_paragon.objectives.calibration import list_category_mix, miscalibration
from recbole_paragon.objectives.category_index import distinct_category_ids
from recbole_paragon.objectives.embedding_diversity import pairwise_distance
from recbole_paragon.settings import setting

Tensor = torch.Tensor


def embedding_ild_at_k(topk_items: Tensor, embeddings: Tensor, k: int) -> Tensor:
    """Per-user mean pairwise cosine distance of the top-k items' embeddings ``[n_items, H]``."""
    unit = F.normalize(embeddings.to(topk_items.device).float(), dim=-1)[topk_items[:, :k]]
    pairs = k * (k - 1) / 2
    return pairwise_distance(unit).triu(1).sum((1, 2)) / pairs if pairs else torch.zeros(len(topk_items))


def miscalibration_at_k(topk_items: Tensor, users: Tensor, item_categories: Tensor, profiles: Tensor, k: int,
                        alpha: float) -> Tensor:
    """Per-user ``KL(p || (1 − α) q + α p)`` of the top-k's category mix ``q`` against the profile ``p``."""
    ids = distinct_category_ids(item_categories).to(topk_items.device)[topk_items[:, :k]]
    mix = list_category_mix(torch.ones(ids.shape[:2], device=ids.device), ids, profiles.shape[1], k)
    return miscalibration(profiles.to(topk_items.device)[users], mix, alpha)


class _ListMetric(AbstractMetric):
    metric_type = EvaluatorType.RANKING

    def __init__(self, config):
        super().__init__(config)
        self.topk = config["topk"]
        self.config = config

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        name = type(self).__name__.lower()
        return {f"{name}@{k}": round(float(self.per_user(dataobject, k).mean()), self.decimal_place)
                for k in self.topk}

    def per_user(self, dataobject, k: int) -> Tensor:
        raise NotImplementedError


class EmbeddingILD(_ListMetric):
    """Intra-list distance@K over the model's item embeddings (cosine): diversity without categories."""

    metric_need = ["rec.items", "data.item_embeddings"]

    def per_user(self, dataobject, k: int) -> Tensor:
        return embedding_ild_at_k(dataobject.get("rec.items"), item_embeddings(dataobject.get("data.item_embeddings")),
                                  k)


class Miscalibration(_ListMetric):
    """Steck's miscalibration@K of the top-K's categories against the user's training history (smaller is better;
    α is ``calibration_alpha``)."""

    metric_need = ["rec.items", "rec.users", "data.item_categories", "data.user_category_profiles"]
    smaller = True

    def per_user(self, dataobject, k: int) -> Tensor:
        return miscalibration_at_k(dataobject.get("rec.items"), dataobject.get("rec.users"),
                                   dataobject.get("data.item_categories"),
                                   dataobject.get("data.user_category_profiles"), k,
                                   float(setting(self.config, "calibration_alpha")))
