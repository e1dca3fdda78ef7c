"""User groups for fairness: a ``.user`` field, or groups derived from the training interactions.

``group_by``:

* ``field`` — the token field ``group_field`` of the ``.user`` file (e.g. ml-100k's ``gender``, ``age`` bands,
  ``occupation``): one group per token.
* ``activity`` — users ranked by their number of training interactions; the top ``group_quantile`` are "active",
  the rest "inactive" (user-oriented fairness, Li et al. 2021).
* ``popularity`` — users ranked by the mean training popularity of the items they interacted with; the top
  ``group_quantile`` are "mainstream", the rest "niche".
* ``length`` — users ranked by the longest history the model sees in training (capped at ``MAX_ITEM_LIST_LENGTH``);
  the top ``group_quantile`` are "long", the rest "short".

``group_quantile`` is one fraction (two groups) or an increasing list of fractions from the top (one more group than
fractions, e.g. ``[0.2, 0.5]``: top 20 %, next 30 %, bottom 50 %). Derived groups use the *training split only*
(no leakage): pass the training dataset. Ranks break ties by user id, so group sizes are exact. Group id 0 is
"unknown" (the padding user, users without training interactions); such users are left out of group comparisons.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

from recbole_paragon.objectives.side_information import user_group_vector
from recbole_paragon.settings import setting

_DERIVED_NAMES = {"activity": ("active", "inactive"), "popularity": ("mainstream", "niche"), "length": ("long", "short")}


@dataclass
class UserGroups:
    """Group id per user id (``ids [n_users]``, 0 = unknown) and the name of each group id ≥ 1."""

    ids: torch.Tensor
    names: Dict[int, str]
    method: str

    def sizes(self) -> Dict[str, int]:
        return {name: int((self.ids == gid).sum()) for gid, name in self.names.items()}

    def summary(self) -> Dict[str, object]:
        """What a report states about the groups."""
        return {"group_by": self.method, "sizes": self.sizes()}


def quantiles(config) -> List[float]:
    """``group_quantile`` as an increasing list of fractions in (0, 1) (checked by its rule in the schema)."""
    value = setting(config, "group_quantile")
    return [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def ranked_groups(values: torch.Tensor, known: torch.Tensor, fractions: Sequence[float]) -> torch.Tensor:
    """Group ids by rank of ``values`` among the ``known`` users: 1 for the top ``fractions[0]``, 2 for the next
    band, …, ``len(fractions) + 1`` for the rest; 0 where not known. Ties go to the smaller user id."""
    users = torch.nonzero(known).flatten()
    order = users[torch.argsort(-values[users].double(), stable=True)]
    cuts = [round(f * len(order)) for f in fractions] + [len(order)]
    groups = torch.zeros(len(values), dtype=torch.long)
    start = 0
    for index, cut in enumerate(cuts, start=1):
        groups[order[start:cut]] = index
        start = cut
    return groups


def _training_statistic(dataset, method: str) -> torch.Tensor:
    """Per user id: training interactions, mean item popularity, or longest history seen in training."""
    inter = dataset.inter_feat
    users, items = inter[dataset.uid_field].long(), inter[dataset.iid_field].long()
    counts = torch.bincount(users, minlength=dataset.user_num).double()
    if method == "activity":
        return counts
    if method == "popularity":
        popularity = torch.bincount(items, minlength=dataset.item_num).double()
        total = torch.zeros(dataset.user_num, dtype=torch.double).index_add_(0, users, popularity[items])
        return total / counts.clamp_min(1)
    lengths = inter[dataset.item_list_length_field].long() if hasattr(dataset, "item_list_length_field") else None
    if lengths is None:
        raise ValueError("group_by=length needs a sequential dataset (history lengths); use activity instead")
    return torch.zeros(dataset.user_num, dtype=torch.double).scatter_reduce_(0, users, lengths.double(), "amax")


def _band_names(method: str, fractions: Sequence[float]) -> Dict[int, str]:
    top, rest = _DERIVED_NAMES[method]
    if len(fractions) == 1:
        return {1: top, 2: rest}
    bounds = [0.0, *fractions, 1.0]
    return {i: f"{method} {round(100 * bounds[i - 1])}-{round(100 * bounds[i])}%" for i in range(1, len(bounds))}


def user_groups(config, dataset, purpose: str = "the fairness objective", minimum: int = 2) -> UserGroups:
    """The configured user groups for ``dataset`` (for derived groups: the *training* split's dataset); fewer than
    ``minimum`` groups, or an empty one, is a clear error."""
    method = str(setting(config, "group_by"))
    if method == "field":
        field = setting(config, "group_field")
        ids = user_group_vector(dataset, field, purpose)
        tokens = dataset.field2id_token.get(field) if hasattr(dataset, "field2id_token") else None
        names = {int(g): (str(tokens[g]) if tokens is not None else str(int(g))) for g in torch.unique(ids) if g > 0}
        groups = UserGroups(ids, names, f"field:{field}")
    else:
        values = _training_statistic(dataset, method)
        known = torch.bincount(dataset.inter_feat[dataset.uid_field].long(), minlength=dataset.user_num) > 0
        known[0] = False  # the padding user
        fractions = quantiles(config)
        groups = UserGroups(ranked_groups(values, known, fractions), _band_names(method, fractions), method)
    empty = [name for name, size in groups.sizes().items() if size == 0]
    if len(groups.names) < minimum or empty:
        raise ValueError(f"{purpose} needs at least {minimum} non-empty user group(s); group_by={method} gives "
                         f"{groups.sizes()}: choose another group_quantile or group_by")
    return groups
