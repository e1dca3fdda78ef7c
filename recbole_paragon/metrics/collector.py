"""RecBole's ``Collector`` extended (by wrapping its methods) to collect what the plugin's metrics need: item
categories, user groups, item popularity and the long tail, users' category profiles, the model's item embeddings
and the user of every evaluated row; and ranked lists collected as a score matrix would be.
"""
from __future__ import annotations

import functools
from typing import Callable, Union

import torch
from recbole.evaluator.collector import Collector

from recbole_paragon import compat
from recbole_paragon.objectives.category_index import distinct_category_ids
from recbole_paragon.objectives.side_information import (item_category_tokens, item_popularity,
                                                         user_category_profiles)
from recbole_paragon.objectives.user_groups import user_groups

#: The attribute of a ``Collector`` that holds the model's item embeddings ``[n_items, H]`` for ``EmbeddingILD``:
#: whoever owns both (the plugin's evaluator, the backbone trainer) sets it; RecBole's data has none.
ITEM_EMBEDDINGS = "paragon_item_embeddings"


def set_item_embeddings(collector: Collector, embeddings: Union[Tensor, Callable[[], Tensor]]) -> None:
    """Give ``collector`` the item embeddings ``EmbeddingILD`` measures distances with: a table (a detached copy is
    kept) or a function returning the model's current one (a model still training)."""
    setattr(collector, ITEM_EMBEDDINGS, embeddings if callable(embeddings) else embeddings.detach().cpu().clone())


def item_embeddings(value: Union[Tensor, Callable[[], Tensor]]) -> Tensor:
    """The table behind ``data.item_embeddings`` (called now when it is a function)."""
    return (value() if callable(value) else value).detach().cpu()

Tensor = torch.Tensor


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
    """Wrap ``Collector`` so it also collects ``data.item_categories``, ``data.user_groups``, ``data.item_popularity``,
    ``data.user_category_profiles``, ``data.item_embeddings`` and ``rec.users``."""
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
        if self.register.need("data.item_popularity"):
            self.data_struct.set("data.item_popularity", item_popularity(train_data.dataset))
        if self.register.need("data.user_category_profiles"):
            ids = distinct_category_ids(item_category_tokens(train_data.dataset, self.config["category_field"],
                                                             "the Miscalibration metric"))
            self.data_struct.set("data.user_category_profiles", user_category_profiles(train_data.dataset, ids))
        if self.register.need("data.item_embeddings"):
            embeddings = getattr(self, ITEM_EMBEDDINGS, None)
            if embeddings is None:
                raise ValueError("EmbeddingILD measures distances between the model's item embeddings, which only "
                                 "the plugin's evaluators hand to RecBole's collector: evaluate it through "
                                 "recbole-paragon (a Paragon<Backbone> run), or drop it from metrics")
            self.data_struct.set("data.item_embeddings", embeddings)

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
