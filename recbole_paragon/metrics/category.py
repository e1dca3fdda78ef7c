"""Category metrics: ``AlphaNDCG@K``, ``ILD@K`` and ``CategoryCoverage@K`` over the categories of the recommended
items, and the plain tensor functions behind them.

``item_categories`` is a padded LongTensor ``[n_items, C]`` of distinct category ids per item, row ``i`` for item
id ``i``, id 0 = padding (RecBole's layout of a ``token_seq`` field; a ``token`` field becomes ``C = 1``). The
arithmetic stays in that index form (:mod:`~recbole_paragon.objectives.category_index`): its cost grows with the
categories per item and the list length, never with the number of categories in the catalogue.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from recbole.evaluator.base_metric import AbstractMetric
from recbole.utils import EvaluatorType

from recbole_paragon.objectives.category_index import (distinct_category_ids, ideal_alpha_dcg_ids, row_local_ids,
                                                       shares_category)
from recbole_paragon.settings import setting, torch_threads

Tensor = torch.Tensor


def discount_at(k: int, device: torch.device) -> Tensor:
    """``1 / log2(1 + r)`` for ranks ``r = 1..k``."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float, device=device))


@dataclass
class _Catalogue:
    """What every evaluation of one item-category table shares: its distinct ids, its number of categories and the
    greedy ideal α-DCG per (k, α)."""

    ids: Tensor
    n_categories: int
    ideals: Dict[Tuple[int, float], float] = field(default_factory=dict)


_CATALOGUES: "OrderedDict[bytes, _Catalogue]" = OrderedDict()


def _catalogue(item_categories: Tensor) -> _Catalogue:
    """The table's :class:`_Catalogue`, computed once per content (RecBole hands every evaluation a fresh copy)."""
    key = hashlib.sha1(item_categories.detach().cpu().contiguous().numpy().tobytes()).digest() + \
        str(tuple(item_categories.shape)).encode()
    if key not in _CATALOGUES:
        _CATALOGUES[key] = _Catalogue(distinct_category_ids(item_categories),
                                      int((item_categories.unique() > 0).sum()))
        while len(_CATALOGUES) > 4:
            _CATALOGUES.popitem(last=False)
    _CATALOGUES.move_to_end(key)
    return _CATALOGUES[key]


def _list_categories(topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
    """Distinct padded category ids ``[U, k, c]`` of each user's top-k items."""
    return _catalogue(item_categories).ids.to(topk_items.device)[topk_items[:, :k]]


def alpha_dcg_at_k(topk_items: Tensor, item_categories: Tensor, k: int, alpha: float) -> Tensor:
    """Per-user α-DCG@k of ranked lists ``[U, ≥k]``: gain at rank r uses ``n_c`` = items ranked *above* sharing c.

    Counts are kept per user over the categories of its own list only (:func:`row_local_ids`)."""
    categories = _list_categories(topk_items, item_categories, k)  # [U, k, c]
    local, size = row_local_ids(categories)
    valid = (categories > 0).float()
    counts = torch.zeros(len(topk_items), size, device=categories.device)
    gains = []
    for rank in range(k):
        seen = counts.gather(1, local[:, rank])
        gains.append(((1.0 - alpha) ** seen * valid[:, rank]).sum(-1))
        counts.scatter_add_(1, local[:, rank], valid[:, rank])  # only now: an item does not count against itself
    return (torch.stack(gains, dim=1) * discount_at(k, counts.device)).sum(1)


def ideal_alpha_dcg(item_categories: Tensor, k: int, alpha: float) -> float:
    """Greedy ideal α-DCG@k over *all* items: each position takes the item with the largest marginal gain.

    With category-only relevance this is the same for every user. Greedy is the standard approximation of the
    (NP-hard) ideal, so α-NDCG can in rare cases slightly exceed 1. The greedy itself is the diversity objective's.
    """
    catalogue = _catalogue(item_categories)
    if (k, alpha) not in catalogue.ideals:
        catalogue.ideals[(k, alpha)] = float(ideal_alpha_dcg_ids(catalogue.ids[None], k, alpha)[0])
    return catalogue.ideals[(k, alpha)]


def alpha_ndcg_at_k(
    topk_items: Tensor, item_categories: Tensor, k: int, alpha: float, ideal: Optional[float] = None
) -> Tensor:
    """Per-user α-NDCG@k (Clarke et al. 2008) with category-only relevance; ``ideal`` defaults to the greedy one."""
    ideal = ideal_alpha_dcg(item_categories, k, alpha) if ideal is None else ideal
    dcg = alpha_dcg_at_k(topk_items, item_categories, k, alpha)
    return dcg / ideal if ideal > 0 else torch.zeros_like(dcg)


def ild_at_k(topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
    """Per-user intra-list distance: mean over the k(k−1)/2 pairs of top-k items of the Jaccard distance
    ``1 − |C_i ∩ C_j| / |C_i ∪ C_j|`` of their category sets (two items without categories: distance 0)."""
    categories = _list_categories(topk_items, item_categories, k)  # [U, k, c]
    inter = shares_category(categories).sum(2).float()  # [U, k, k]: categories of i that j carries too
    size = (categories > 0).sum(-1).float()
    union = size[:, :, None] + size[:, None, :] - inter
    distance = torch.where(union > 0, 1.0 - inter / union.clamp(min=1.0), torch.zeros_like(union))
    n_pairs = k * (k - 1) / 2
    return distance.triu(1).sum((1, 2)) / n_pairs if n_pairs else torch.zeros_like(size[:, 0])


def category_coverage_at_k(
    topk_items: Tensor, item_categories: Tensor, k: int, n_categories: Optional[int] = None
) -> Tensor:
    """Per-user fraction of all categories present in the top-k; by default "all" = every id any item carries."""
    if n_categories is None:
        n_categories = _catalogue(item_categories).n_categories
    ordered = _list_categories(topk_items, item_categories, k).flatten(1).sort(1).values
    distinct = (ordered[:, :1] > 0).sum(1) + ((ordered[:, 1:] != ordered[:, :-1]) & (ordered[:, 1:] > 0)).sum(1)
    return distinct.float() / max(n_categories, 1)


def _config_get(config, key: str):
    """A config value the metrics cannot run without."""
    value = config[key]
    if value is None:
        raise ValueError(f"metric needs config key '{key}'; set it (recbole-paragon's default is in overall.yaml)")
    return value


class _CategoryMetric(AbstractMetric):
    """Top-k metric over the categories of recommended items, averaged over users."""

    metric_type = EvaluatorType.RANKING
    metric_need = ["rec.items", "data.item_categories"]

    def __init__(self, config):
        super().__init__(config)
        self.topk = config["topk"]
        self.threads = setting(config, "compute_threads")  # per-rank loops of small ops: one thread is fastest

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        items, categories = dataobject.get("rec.items"), dataobject.get("data.item_categories")
        name = type(self).__name__.lower()
        with torch_threads(self.threads):
            return {f"{name}@{k}": round(float(self.per_user(items, categories, k).mean()), self.decimal_place)
                    for k in self.topk}

    def per_user(self, topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
        raise NotImplementedError


class AlphaNDCG(_CategoryMetric):
    r"""α-NDCG@K with category-only relevance: gain :math:`\sum_c y_{ic}(1-\alpha)^{n_c}`, :math:`n_c` = items ranked
    above sharing category c, discount :math:`1/\log_2(1+r)`, normalised by the greedy ideal over all items.
    α is ``alpha_ndcg_alpha``; categories come from ``category_field``."""

    def __init__(self, config):
        super().__init__(config)
        self.alpha = float(_config_get(config, "alpha_ndcg_alpha"))

    def per_user(self, topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
        return alpha_ndcg_at_k(topk_items, item_categories, k, self.alpha)


class ILD(_CategoryMetric):
    """Intra-list distance@K: mean pairwise Jaccard distance between the category sets of the top-K items."""

    def per_user(self, topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
        return ild_at_k(topk_items, item_categories, k)


class CategoryCoverage(_CategoryMetric):
    """Fraction of all item categories that appear in a user's top-K, averaged over users."""

    def per_user(self, topk_items: Tensor, item_categories: Tensor, k: int) -> Tensor:
        return category_coverage_at_k(topk_items, item_categories, k)
