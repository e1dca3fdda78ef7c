"""Accuracy: the backbone's own RecBole loss on the next item (CE over all items, or BPR with a random negative).

``accuracy_candidates: N`` bounds CE's cost on large catalogues (``~``, the default, is the full CE): the softmax
runs over the target, the backbone's top-N items of the row (cached with its states) and ``accuracy_negatives``
(S) items drawn uniformly from the catalogue, whose exp-scores are weighted by ``(n_items − 1) / S`` so that they
stand for every item outside the top-N (draws that hit the target or a top-N item are dropped). Its bias: the top-N
part of the partition function is exact and the tail's sum is estimated without bias, but the log of that estimate
is biased low (Jensen), so the loss is on average below the full CE, the more so the more softmax mass the tail
holds and the smaller S; the tail's gradient is a sample of S items a step instead of all of them, so items outside
the backbone's top-N are pushed down more noisily. When N covers the catalogue it is exactly CE over every item but
the padding item 0. BPR costs one negative per row already and ignores the option.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from recbole_paragon.objectives.base import CachedBatch, Objective, Scores
from recbole_paragon.settings import setting


def candidate_cross_entropy(scores: Scores, target: torch.Tensor, candidates: torch.Tensor,
                            negatives: torch.Tensor, candidate_scores: Optional[torch.Tensor] = None) -> torch.Tensor:
    """CE of ``target [B]`` over itself, ``candidates [B, N]`` (exact) and uniform ``negatives [B, S]`` drawn from
    items ``1..n_items−1`` (importance-weighted for the rest of the catalogue); ``candidate_scores`` when known."""
    rows, count = candidates.shape[0], candidates.shape[1]
    if candidate_scores is None:
        candidate_scores = scores.of(candidates)
    others = scores.of(torch.cat([target[:, None], negatives], 1))
    tail = math.log((scores.num_items - 1) / negatives.shape[1])
    logits = torch.cat([others[:, :1], candidate_scores, others[:, 1:] + tail], 1)
    ordered = candidates.sort(1).values
    position = torch.searchsorted(ordered, negatives).clamp_max(count - 1)
    dropped = torch.cat([torch.zeros(rows, 1, dtype=torch.bool, device=target.device),
                         candidates == target[:, None],
                         (ordered.gather(1, position) == negatives) | (negatives == target[:, None])], 1)
    logits = logits.masked_fill(dropped, -math.inf)
    return F.cross_entropy(logits, torch.zeros(rows, dtype=torch.long, device=logits.device))


class Accuracy(Objective):
    name = "accuracy"
    metric_class = "NDCG"

    def __init__(self, config, dataset, model) -> None:
        super().__init__(config, dataset, model)
        self.loss_type = str(setting(config, "loss_type")).upper()
        count: Optional[int] = setting(config, "accuracy_candidates")
        self.num_candidates = None if count is None or self.loss_type != "CE" else int(count)
        self.num_negatives = int(setting(config, "accuracy_negatives"))
        self.candidates = self.num_candidates or 0

    def loss(self, batch: CachedBatch, rows: torch.Tensor, scores: Scores) -> torch.Tensor:
        if self.loss_type == "CE" and self.num_candidates is None:
            return F.cross_entropy(scores.full, batch.target)
        negatives = torch.randint(1, scores.num_items, batch.target.shape if self.loss_type == "BPR" else
                                  (len(batch.target), self.num_negatives), device=batch.target.device)
        if self.loss_type == "CE":
            return candidate_cross_entropy(scores, batch.target, batch.candidates[:, :self.num_candidates], negatives,
                                           scores.of_candidates(batch.candidates, self.num_candidates))
        margin = scores.of(batch.target[:, None]) - scores.of(negatives[:, None])
        return -F.logsigmoid(margin).mean()
