"""Beyond-accuracy metrics for RecBole: ``AlphaNDCG@K``, ``ILD@K``, ``CategoryCoverage@K``, ``GroupGap@K``,
``GroupNDCG@K`` (NDCG of each user group) and ``WorstGroupNDCG@K``.

Plain tensor functions do the arithmetic, so the adapter trainer can score cached rankings without RecBole's
evaluator; the metric classes only fetch their inputs from RecBole's ``DataStruct`` and call them. Importing this
module registers the classes in ``recbole.evaluator.register`` and extends RecBole's ``Collector`` (by wrapping its
methods) to collect item categories, user groups and the user of every evaluated row.

Conventions: ``item_categories`` is a padded LongTensor ``[n_items, C]`` of distinct category ids per item, row ``i``
for item id ``i``, id 0 = padding (RecBole's layout of a ``token_seq`` field; a ``token`` field becomes ``C = 1``).
The arithmetic stays in that index form (:mod:`~recbole_paragon.objectives.category_index`): its cost grows with the
categories per item and the list length, never with the number of categories in the catalogue.
``groups`` are group ids from :func:`~recbole_paragon.objectives.user_groups.user_groups` (``group_by``, computed on
the training split), 0 = unknown (such users are left out of group comparisons).
"""
from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from recbole.evaluator import register
from recbole.evaluator.base_metric import AbstractMetric, TopkMetric
from recbole.evaluator.collector import Collector
from recbole.utils import EvaluatorType

from recbole_paragon import compat  # noqa: F401  (its Collector patch must be in place before ours wraps it)
from recbole_paragon.objectives.category_index import (distinct_category_ids, ideal_alpha_dcg_ids, row_local_ids,
                                                       shares_category)
from recbole_paragon.objectives.side_information import item_category_tokens
from recbole_paragon.objectives.user_groups import user_groups
from recbole_paragon.settings import setting, torch_threads

Tensor = torch.Tensor


# ---------------------------------------------------------------- plain functions


def _discount(k: int, device: torch.device) -> Tensor:
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
    return (torch.stack(gains, dim=1) * _discount(k, counts.device)).sum(1)


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


def ndcg_at_k(topk_hits: Tensor, positives_count: Tensor, k: Optional[int] = None) -> Tensor:
    """Per-user NDCG@k from hit indicators ``[U, ≥k]`` and each user's number of positives (0 positives -> 0)."""
    k = topk_hits.shape[1] if k is None else k
    discount = _discount(k, topk_hits.device)
    dcg = (topk_hits[:, :k].float() * discount).sum(1)
    idcg = discount.cumsum(0)[positives_count.long().clamp(1, k) - 1]
    return torch.where(positives_count > 0, dcg / idcg, torch.zeros_like(dcg))


def group_means(per_user_values: Tensor, groups: Tensor) -> Dict[int, float]:
    """Mean per-user value of each group present (group 0, unknown, ignored)."""
    known = groups > 0
    return {int(g): float(per_user_values[known & (groups == g)].float().mean()) for g in groups[known].unique()}


def group_gap(per_user_values: Tensor, groups: Tensor) -> float:
    """Max − min over groups of the mean per-user value (|difference| for two groups); group 0 (missing) ignored."""
    means = list(group_means(per_user_values, groups).values())
    return max(means) - min(means) if len(means) > 1 else 0.0


# ---------------------------------------------------------------- RecBole metrics


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


def _group_names(dataobject, groups: Tensor) -> Dict[int, str]:
    """Names of the group ids (collected with the groups; the ids themselves when none were)."""
    if "data.user_group_names" in dataobject:
        return dataobject.get("data.user_group_names")
    return {int(g): str(int(g)) for g in torch.unique(groups) if g > 0}


class _GroupMetric(TopkMetric):
    """NDCG@K per user group (``group_by``); every group must have evaluated users."""

    metric_need = ["rec.topk", "rec.users", "data.user_groups"]

    def group_ndcg(self, dataobject, k: int) -> Dict[str, float]:
        hits, positives = (torch.from_numpy(array) for array in self.used_info(dataobject))
        groups = dataobject.get("data.user_groups")
        names = _group_names(dataobject, groups)
        means = group_means(ndcg_at_k(hits, positives, k), groups[dataobject.get("rec.users")])
        missing = [names[g] for g in names if g not in means]
        if missing:
            raise ValueError(f"user group(s) {missing} have no users in this evaluation; choose another "
                             "group_quantile or group_by")
        return {names[g]: means[g] for g in names}


class GroupGap(_GroupMetric):
    """|NDCG@K of group A − NDCG@K of group B| for the user groups (max − min of the group means for more
    groups). Smaller is better."""

    smaller = True

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        result = {}
        for k in self.topk:
            means = list(self.group_ndcg(dataobject, k).values())
            result[f"groupgap@{k}"] = round(max(means) - min(means) if len(means) > 1 else 0.0, self.decimal_place)
        return result


class GroupNDCG(_GroupMetric):
    """NDCG@K of each user group, as ``groupndcg@K[<group name>]``: which group a change moved."""

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        return {f"groupndcg@{k}[{name}]": round(value, self.decimal_place)
                for k in self.topk for name, value in self.group_ndcg(dataobject, k).items()}


class WorstGroupNDCG(_GroupMetric):
    """NDCG@K of the worst-served user group (bigger is better: fairness without levelling down)."""

    def calculate_metric(self, dataobject) -> Dict[str, float]:
        return {f"worstgroupndcg@{k}": round(min(self.group_ndcg(dataobject, k).values()), self.decimal_place)
                for k in self.topk}


METRICS = (AlphaNDCG, ILD, CategoryCoverage, GroupGap, GroupNDCG, WorstGroupNDCG)


def register_metrics(*metric_classes: type) -> None:
    """Add metric classes to RecBole's registry in place, so every module that imported its objects sees them."""
    for metric_class in metric_classes:
        name = metric_class.__name__.lower()
        register.metrics_dict[name] = metric_class
        register.metric_information[name] = metric_class.metric_need
        register.metric_types[name] = metric_class.metric_type
        if metric_class.smaller and name not in register.smaller_metrics:
            register.smaller_metrics.append(name)


# ---------------------------------------------------------------- Collector extension


def _row_users(user_ids: Tensor, n_rows: int) -> Tensor:
    """The user of each score row: one interaction row per user (full ranking) or consecutive runs (sampled)."""
    users = user_ids if len(user_ids) == n_rows else torch.unique_consecutive(user_ids)
    if len(users) != n_rows:
        raise ValueError(f"cannot match {len(user_ids)} evaluated interactions to {n_rows} score rows")
    return users


def collect_ranked_lists(collector: Collector, topk_items: Tensor, user_ids: Tensor, target: Tensor) -> None:
    """Collect ranked item lists ``[B, ≥K]`` of users ``user_ids`` with one held-out ``target`` each, as a score
    matrix would be collected (``rec.items``, ``rec.topk`` and ``rec.users``), for methods that rank lists."""
    compat.collect_ranked(collector, topk_items, target)
    if collector.register.need("rec.users"):
        collector.data_struct.update_tensor("rec.users", user_ids)


def _extend_collector() -> None:
    """Wrap ``Collector`` so it also collects ``data.item_categories``, ``data.user_groups`` and ``rec.users``."""
    if getattr(Collector, "_paragon_metrics", False):
        return
    data_collect, eval_batch_collect, get_data_struct = (
        Collector.data_collect, Collector.eval_batch_collect, Collector.get_data_struct)

    @functools.wraps(data_collect)
    def collect_data(self, train_data):
        data_collect(self, train_data)
        if self.register.need("data.item_categories"):
            self.data_struct.set("data.item_categories",
                                 item_category_tokens(train_data.dataset, self.config["category_field"], "a metric"))
        if self.register.need("data.user_groups"):
            groups = user_groups(self.config, train_data.dataset, "a group metric", minimum=1)
            self.data_struct.set("data.user_groups", groups.ids)
            self.data_struct.set("data.user_group_names", groups.names)

    @functools.wraps(eval_batch_collect)
    def collect_eval_batch(self, scores_tensor, interaction, positive_u, positive_i):
        eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i)
        if self.register.need("rec.users"):
            users = _row_users(interaction[self.config["USER_ID_FIELD"]], len(scores_tensor))
            self.data_struct.update_tensor("rec.users", users)

    @functools.wraps(get_data_struct)
    def collected_data_struct(self):
        returned = get_data_struct(self)
        if "rec.users" in self.data_struct:  # per-evaluation, reset like rec.items
            del self.data_struct["rec.users"]
        return returned

    Collector.data_collect = collect_data
    Collector.eval_batch_collect = collect_eval_batch
    Collector.get_data_struct = collected_data_struct
    Collector._paragon_metrics = True


register_metrics(*METRICS)
_extend_collector()
