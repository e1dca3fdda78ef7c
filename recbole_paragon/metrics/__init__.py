"""Beyond-accuracy metrics for RecBole, registered for every run (plain models too): ``AlphaNDCG``, ``ILD``,
``CategoryCoverage`` (:mod:`.category`); ``GroupGap``, ``GroupNDCG``, ``WorstGroupNDCG`` (:mod:`.groups`);
``TailExposure``, ``Novelty`` (:mod:`.popularity`); ``EmbeddingILD``, ``Miscalibration`` (:mod:`.lists`).

Plain tensor functions do the arithmetic, so the adapter trainer can score cached rankings without RecBole's
evaluator; the metric classes only fetch their inputs from RecBole's ``DataStruct``. Importing this package
registers the classes in ``recbole.evaluator.register`` and extends RecBole's ``Collector`` (:mod:`.collector`).
"""
from __future__ import annotations

from recbole.evaluator import register

from recbole_paragon.metrics.category import (CategoryCoverage, AlphaNDCG, ILD, alpha_dcg_at_k, alpha_ndcg_at_k,
                                              category_coverage_at_k, discount_at, ideal_alpha_dcg, ild_at_k)
from recbole_paragon.metrics.collector import (ITEM_EMBEDDINGS, _extend_collector, collect_ranked_lists,
                                               set_item_embeddings)
from recbole_paragon.metrics.groups import GroupGap, GroupNDCG, WorstGroupNDCG, group_gap, group_means, ndcg_at_k
from recbole_paragon.metrics.lists import EmbeddingILD, Miscalibration, embedding_ild_at_k, miscalibration_at_k
from recbole_paragon.metrics.popularity import Novelty, TailExposure, novelty_at_k, tail_exposure_at_k

METRICS = (AlphaNDCG, ILD, CategoryCoverage, GroupGap, GroupNDCG, WorstGroupNDCG, TailExposure, Novelty,
           EmbeddingILD, Miscalibration)


def register_metrics(*metric_classes: type) -> None:
    """Add metric classes to RecBole's registry in place, so every module that imported its objects sees them."""
    for metric_class in metric_classes:
        name = metric_class.__name__.lower()
        register.metrics_dict[name] = metric_class
        register.metric_information[name] = metric_class.metric_need
        register.metric_types[name] = metric_class.metric_type
        if metric_class.smaller and name not in register.smaller_metrics:
            register.smaller_metrics.append(name)


register_metrics(*METRICS)
_extend_collector()

__all__ = ["AlphaNDCG", "CategoryCoverage", "EmbeddingILD", "GroupGap", "GroupNDCG", "ILD", "ITEM_EMBEDDINGS",
           "METRICS", "Miscalibration", "Novelty", "TailExposure", "WorstGroupNDCG", "alpha_dcg_at_k",
           "alpha_ndcg_at_k", "category_coverage_at_k", "collect_ranked_lists", "discount_at", "embedding_ild_at_k",
           "group_gap", "group_means", "ideal_alpha_dcg", "ild_at_k", "miscalibration_at_k", "ndcg_at_k",
           "novelty_at_k", "register_metrics", "set_item_embeddings", "tail_exposure_at_k"]
