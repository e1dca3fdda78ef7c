"""One evaluator for every adapted model: RecBole's metrics on a split's cached backbone states.

Any method of adapting the frozen backbone ends in one of three things, and each is scored here the same way:
an adapter vector (tuned, generated, looked up in the bank), a re-ranking of the backbone's scores (MMR), or a
whole model trained on its own (retraining), whose states are cached afresh.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Callable, Dict, Optional

import torch
from recbole.data.interaction import Interaction
from recbole.evaluator import Collector, DataStruct
from recbole.evaluator import Evaluator as RecBoleEvaluator

from recbole_paragon.metrics import collect_ranked_lists, set_item_embeddings
from recbole_paragon.model.cache import RepresentationCache, top_candidates

Rescore = Callable[[torch.Tensor], torch.Tensor]


def restricted(scores: torch.Tensor, sampled: Optional[torch.Tensor]) -> torch.Tensor:
    """``scores [B, n_items]`` with every item outside each row's ``sampled [B, 1 + n]`` set to −inf, as RecBole's
    sampled evaluation ranks them; ``scores`` unchanged when ``sampled`` is None (full ranking)."""
    if sampled is None:
        return scores
    return torch.full_like(scores, -torch.inf).scatter_(1, sampled, scores.gather(1, sampled))


class SplitEvaluator:
    """RecBole's ``Collector`` + ``Evaluator`` (config ``metrics`` / ``topk``) over cached splits of one backbone.

    ``caches`` maps split names (``train``, ``valid``, ``test``) to their :class:`RepresentationCache`. The
    evaluator keeps its own adapter copy, so scoring never changes the model it was built for.
    """

    def __init__(self, config, model, train_data, caches: Dict[str, RepresentationCache]) -> None:
        self.config = config
        self.model = model
        self.caches = caches
        self.adapter = copy.deepcopy(model.adapter).requires_grad_(False)
        self.collector = Collector(config)
        set_item_embeddings(self.collector, model.item_vectors())  # EmbeddingILD: the frozen backbone's items
        self.collector.data_collect(train_data)
        self.metrics = RecBoleEvaluator(config)

    @torch.no_grad()
    def vector(self, vector: Optional[torch.Tensor], split: str = "valid") -> "OrderedDict[str, float]":
        """Metrics of the backbone with adapter ``vector`` (None: the identity adapter) on ``split``."""
        return self.metrics.evaluate(self.collected(vector, split))

    @torch.no_grad()
    def collected(self, vector: Optional[torch.Tensor], split: str = "valid") -> DataStruct:
        """RecBole's collected data (ranked lists per row, and what the metrics need) of the backbone with adapter
        ``vector`` on ``split``, before any metric is computed (bootstrapping resamples its rows)."""
        if vector is None:
            self.adapter.reset_parameters()
        else:
            self.adapter.set_vector(vector)
        self.collect(self.caches[split], self.model, self.adapter)
        return self.collector.get_data_struct()

    @torch.no_grad()
    def rescored(self, split: str, rescore: Rescore) -> "OrderedDict[str, float]":
        """Metrics of the plain backbone's scores after ``rescore`` (scores -> scores, e.g. a re-ranking)."""
        self.adapter.reset_parameters()
        return self.cache(self.caches[split], self.model, self.adapter, rescore)

    @torch.no_grad()
    def backbone_top(self, split: str, count: int):
        """The plain backbone's ``count`` best items of every row of ``split`` and their scores, ``[N, count]`` each
        (item 0 never among them; under sampled evaluation only the row's sampled items score finite), computed
        chunk by chunk."""
        self.adapter.reset_parameters()
        scores, items = [], []
        for batch in self.caches[split].chunks(int(self.config["eval_batch_size"])):
            all_scores = restricted(self.model.score_representation(self.adapter(batch.hidden)), batch.sampled)
            top = top_candidates(all_scores, count)
            items.append(top)
            scores.append(all_scores.gather(1, top))
        return torch.cat(scores), torch.cat(items)

    @torch.no_grad()
    def ranked(self, split: str, lists: torch.Tensor) -> "OrderedDict[str, float]":
        """Metrics of ranked item lists ``[N, ≥K]``, one per row of ``split``'s cache in its order (methods that
        rank themselves: no score matrix is built)."""
        cache = self.caches[split]
        if len(lists) != len(cache):
            raise ValueError(f"{len(lists)} ranked lists for the {len(cache)} rows of split {split!r}")
        for batch in cache.chunks(int(self.config["eval_batch_size"])):
            collect_ranked_lists(self.collector, lists[batch.index], batch.users, batch.target)
        return self.metrics.evaluate(self.collector.get_data_struct())

    @torch.no_grad()
    def trained_model(self, model, loader) -> "OrderedDict[str, float]":
        """Metrics of another trained ``Paragon<Backbone>`` (its own backbone and adapter) on a split's RecBole
        ``loader`` (its states are cached afresh)."""
        cache = RepresentationCache.build(model, loader, 1)
        return self.cache(cache, model, model.adapter)

    @torch.no_grad()
    def cache(self, cache: RepresentationCache, model, transform, rescore: Optional[Rescore] = None
              ) -> "OrderedDict[str, float]":
        """Score cached states through ``transform`` (hidden -> adapted hidden) with ``model``'s score head (only
        the sampled items under sampled evaluation), optionally re-rank with ``rescore``, and run RecBole's evaluator."""
        self.collect(cache, model, transform, rescore)
        return self.metrics.evaluate(self.collector.get_data_struct())

    def collect(self, cache: RepresentationCache, model, transform, rescore: Optional[Rescore] = None) -> None:
        """Feed the collector every row of ``cache`` scored by ``model`` through ``transform`` (and ``rescore``)."""
        for batch in cache.chunks(int(self.config["eval_batch_size"])):
            scores = restricted(model.score_representation(transform(batch.hidden)), batch.sampled)
            scores[:, 0] = -torch.inf
            if rescore is not None:
                scores = rescore(scores)
            interaction = Interaction({model.USER_ID: batch.users})
            positive_u = torch.arange(len(batch.target))
            self.collector.eval_batch_collect(scores, interaction, positive_u, batch.target)
