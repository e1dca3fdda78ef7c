"""Accuracy: the backbone's own RecBole loss on the next item (CE over all items, or BPR with a random negative)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_paragon.objectives.base import CachedBatch, Objective
from recbole_paragon.settings import setting


class Accuracy(Objective):
    name = "accuracy"
    metric_class = "NDCG"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.loss_type = str(setting(config, "loss_type")).upper()
        if self.loss_type not in ("CE", "BPR"):
            raise ValueError(f"accuracy objective supports loss_type CE or BPR, got {self.loss_type!r}")

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.loss_type == "CE":
            return F.cross_entropy(scores, batch.target)
        negatives = torch.randint(1, scores.shape[1], batch.target.shape, device=scores.device)
        margin = scores.gather(1, batch.target[:, None]) - scores.gather(1, negatives[:, None])
        return -F.logsigmoid(margin).mean()
