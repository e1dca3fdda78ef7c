"""The bundle's catalogue: external tokens <-> internal ids, what to show for an item, each user's history.

Export reads them from the RecBole dataset (tokens, categories, histories) and the raw ``.item`` file (display
fields such as ml-100k's ``movie_title``, which the model never loads); :class:`Catalogue` answers lookups at serving
time and names an unknown user or item token in its error.
"""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from recbole_paragon.echo import brief
from recbole_paragon.settings import setting

PADDING = 0  # RecBole's padding id of every token field


class UnknownIdError(LookupError):
    """A user or item token the bundle does not know; the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown id"


# -- export --------------------------------------------------------------------------------------------------------
def user_histories(dataset) -> Tuple[torch.Tensor, torch.Tensor]:
    """Every user's interactions in time order (ties in file order, as RecBole's stable sorts leave them), as
    ``(items [N], offsets [n_users + 1])``: user ``u``'s items are ``items[offsets[u]:offsets[u + 1]]``.

    After RecBole's data preparation a sequential dataset's ``inter_feat`` holds one row per *target* (the user's
    first item only appears in the item list of the first row), so a history is rebuilt as that first row's list
    followed by every row's target."""
    inter = dataset.inter_feat
    users, items = inter[dataset.uid_field].long(), inter[dataset.iid_field].long()
    order = torch.arange(len(users))
    if dataset.time_field and dataset.time_field in inter.columns:
        order = torch.argsort(inter[dataset.time_field], stable=True)
    order = order[torch.argsort(users[order], stable=True)]
    users, items = users[order], items[order]
    list_field = dataset.iid_field + str(dataset.config["LIST_SUFFIX"])
    length_field = dataset.config["ITEM_LIST_LENGTH_FIELD"]
    starts = {}
    if list_field in inter.columns and length_field in inter.columns:
        lists, lengths = inter[list_field][order].long(), inter[length_field][order].long()
        first = torch.ones(len(users), dtype=torch.bool)
        first[1:] = users[1:] != users[:-1]
        starts = {int(users[i]): lists[i, :int(lengths[i])] for i in torch.nonzero(first).flatten().tolist()}
    histories = [[] for _ in range(dataset.user_num)]
    for user, item in zip(users.tolist(), items.tolist()):
        histories[user].append(item)
    parts = [torch.cat([starts.get(u, torch.zeros(0, dtype=torch.long)), torch.tensor(h, dtype=torch.long)])
             for u, h in enumerate(histories)]
    offsets = torch.tensor([0] + [len(p) for p in parts]).cumsum(0)
    return torch.cat(parts), offsets


def _tokens(dataset, field: str) -> List[str]:
    return [str(token) for token in dataset.field2id_token[field]]


def item_categories(dataset, field: Optional[str]) -> List[List[str]]:
    """Category tokens of every item (``[]`` when the dataset has no such field)."""
    features = dataset.item_feat
    if not field or features is None or field not in features.columns:
        return [[] for _ in range(dataset.item_num)]
    ids = features[field].long()
    ids = ids[:, None] if ids.dim() == 1 else ids
    names = _tokens(dataset, field)
    return [[names[i] for i in row.tolist() if i != PADDING] for row in ids]


def raw_item_fields(config, dataset) -> Dict[str, List[Optional[str]]]:
    """Every column of the raw ``.item`` file as display strings, by internal item id (``None``: not in the file).

    The model may load only some of these columns (``load_col``); the display needs the others too (titles)."""
    path = os.path.join(str(config["data_path"]), f"{config['dataset']}.item")
    tokens = _tokens(dataset, dataset.iid_field)
    index = {token: i for i, token in enumerate(tokens)}
    if not os.path.isfile(path):
        return {}
    with open(path, encoding=config["encoding"] or "utf-8", errors="replace", newline="") as handle:
        rows = csv.reader(handle, delimiter=config["field_separator"] or "\t", quoting=csv.QUOTE_NONE)
        header = [name.split(":")[0] for name in next(rows, [])]
        if dataset.iid_field not in header:
            return {}
        key = header.index(dataset.iid_field)
        columns: Dict[str, List[Optional[str]]] = {name: [None] * len(tokens) for name in header if name != header[key]}
        for row in rows:
            item = index.get(row[key]) if len(row) > key else None
            if item is None:
                continue
            for position, name in enumerate(header):
                if name in columns and position < len(row):
                    columns[name][item] = row[position]
    return columns


def catalogue_payload(config, dataset) -> Dict[str, Any]:
    """JSON of the catalogue: tokens, titles (``title_field``), categories (``category_field``), display fields."""
    fields = raw_item_fields(config, dataset)
    title_field = setting(config, "title_field")
    if title_field and title_field not in fields:
        raise ValueError(f"title_field={title_field!r} is not a column of {config['dataset']}.item "
                         f"(columns: {sorted(fields) or 'none'}): set title_field to one of them, or to ~")
    return {
        "user_tokens": _tokens(dataset, dataset.uid_field),
        "item_tokens": _tokens(dataset, dataset.iid_field),
        "title_field": title_field,
        "category_field": setting(config, "category_field"),
        "categories": item_categories(dataset, setting(config, "category_field")),
        "fields": fields,
    }


# -- serving -------------------------------------------------------------------------------------------------------
class Catalogue:
    """Token lookups, item descriptions and histories of a loaded bundle."""

    def __init__(self, payload: Dict[str, Any], history_items: torch.Tensor, history_offsets: torch.Tensor) -> None:
        self.user_tokens: List[str] = list(payload["user_tokens"])
        self.item_tokens: List[str] = list(payload["item_tokens"])
        self.users = {token: i for i, token in enumerate(self.user_tokens) if i != PADDING}
        self.items = {token: i for i, token in enumerate(self.item_tokens) if i != PADDING}
        self.categories: List[List[str]] = [list(c) for c in payload["categories"]]
        self.fields: Dict[str, List[Optional[str]]] = dict(payload.get("fields") or {})
        self.titles = self.fields.get(payload.get("title_field")) if payload.get("title_field") else None
        self.history_items = history_items.long()
        self.history_offsets = history_offsets.long()
        if len(self.history_offsets) != len(self.user_tokens) + 1 or len(self.categories) != len(self.item_tokens):
            raise ValueError("the catalogue's histories or categories do not match its tokens")

    @property
    def num_items(self) -> int:
        return len(self.item_tokens)

    def user_ids(self, tokens: Sequence[Any]) -> List[int]:
        """Internal ids of user tokens; an unknown one raises :class:`UnknownIdError` naming it."""
        return [self._lookup(self.users, token, "user") for token in tokens]

    def item_ids(self, tokens: Sequence[Any]) -> List[int]:
        """Internal ids of item tokens; an unknown one raises :class:`UnknownIdError` naming it."""
        return [self._lookup(self.items, token, "item") for token in tokens]

    @staticmethod
    def _lookup(index: Dict[str, int], token: Any, kind: str) -> int:
        if isinstance(token, bool) or not isinstance(token, (str, int)):
            raise ValueError(f"{kind} ids are tokens (strings) like the dataset's, got {brief(token)}")
        found = index.get(str(token))
        if found is None:
            raise UnknownIdError(f"unknown {kind} {brief(str(token))}: the bundle knows {len(index)} {kind} tokens "
                                 f"(those of the exported dataset's {kind}_id field)")
        return found

    def history(self, user: int) -> torch.Tensor:
        """The user's items in time order (internal ids)."""
        return self.history_items[self.history_offsets[user]:self.history_offsets[user + 1]]

    def describe(self, item: int, score: float) -> Dict[str, Any]:
        """``{item, score, title, categories}`` in external tokens."""
        return {"item": self.item_tokens[item], "score": score,
                "title": self.titles[item] if self.titles is not None else None,
                "categories": self.categories[item]}
