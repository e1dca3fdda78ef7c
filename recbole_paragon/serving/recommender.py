"""``ParagonRecommender``: top-K in the dataset's own ids for any preference, from a bundle.

    from recbole_paragon import ParagonRecommender
    recommender = ParagonRecommender.load("saved/ParagonSASRec-ml-100k")           # its bundle/
    recommender.recommend(users=["196", "186"], preference=[0.7, 0.3], k=10)       # [[{item, score, title, ...}]]
    recommender.recommend(histories=[["242", "302"]], preference=[0, 1])
    model = recommender.adapter([0.7, 0.3])      # an independent Paragon model, for full_sort_predict

The bundle's model is never changed: adapters are applied functionally (``apply_adapter_vector``), so any number of
preferences are served side by side from one process. The frozen backbone's representation of a known user is
computed once and kept; generated adapters are kept per preference (:class:`AdapterCache`).
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import torch
from recbole.data.interaction import Interaction

from recbole_paragon.bundle import Bundle, load_bundle
from recbole_paragon.model.adapter import apply_adapter_vector
from recbole_paragon.preference import preference_distances
from recbole_paragon.serving.batcher import GenerationBatcher
from recbole_paragon.serving.cache import AdapterCache
from recbole_paragon.serving.requests import Preference, Query, Requests
from recbole_paragon.serving.topk import exact_top_k, index_top_k
from recbole_paragon.settings import setting


@dataclass
class Ranking:
    """Top-K of a batch: internal ``items`` / ``scores`` ``[B, k]`` (rows may be shorter when few items are left)."""

    items: List[List[int]]
    scores: List[List[float]]
    preference: Preference
    cached: bool


class ParagonRecommender:
    """A loaded bundle serving recommendations by external tokens; safe to call from several threads."""

    def __init__(self, bundle: Bundle, cache_size: Optional[int] = None) -> None:
        config = bundle.config
        self.bundle = bundle
        self.model = bundle.model
        self.catalogue = bundle.catalogue
        self.objectives: List[str] = list(bundle.adapters.objectives)
        self.requests = Requests(self.objectives, self.catalogue, int(setting(config, "serve_default_k")),
                                 int(setting(config, "serve_max_k")), int(setting(config, "serve_max_history")))
        self.index = bundle.index  # the ANN item index of a large catalogue (bundle/index.py), else None
        self.extra_candidates = int(setting(config, "serve_index_candidates"))
        self._active = 0  # calls of rank() in progress: the batcher waits briefly for those that will generate
        self._active_lock = threading.Lock()
        self.batcher = GenerationBatcher(self._sample, int(setting(config, "serve_generation_batch")),
                                         float(setting(config, "serve_batch_window_ms")) / 1000,
                                         expected=lambda: self._active)
        size = setting(config, "serve_adapter_cache_size") if cache_size is None else cache_size
        self.adapters = AdapterCache(self.batcher, int(size))
        self._model_lock = threading.Lock()
        hidden = self.model.adapter.hidden_size
        self._states = torch.zeros(len(self.catalogue.user_tokens), hidden)
        self._known = torch.zeros(len(self.catalogue.user_tokens), dtype=torch.bool)
        self._grid = torch.tensor([entry["preference"] for entry in bundle.grid], dtype=torch.float32)

    @classmethod
    def load(cls, path: str, cache_size: Optional[int] = None, settings: Optional[Dict[str, Any]] = None
             ) -> "ParagonRecommender":
        """The bundle at ``path`` (a bundle directory or a run directory holding ``bundle/``); ``settings``
        (``serve_*`` keys) override the yaml's (a bundle does not carry serving settings)."""
        return cls(load_bundle(path, settings), cache_size)

    # -- preferences and adapters -------------------------------------------------------------------------------
    def preference(self, value: Any) -> Preference:
        """``value`` validated, normalised and rounded (:meth:`Requests.preference`); a dict maps names."""
        return self.requests.preference(value)

    def is_cached(self, preference: Preference) -> bool:
        """Whether the adapter for a checked ``preference`` is already generated."""
        return self.adapters.get(preference.values) is not None

    def adapter_vector(self, preference: Any) -> torch.Tensor:
        """The generated adapter for ``preference`` (cached)."""
        return self.adapters.vectors([self.preference(preference)])[0][0]

    def adapter(self, preference: Any):
        """An independent copy of the model with the adapter for ``preference``, ready for ``full_sort_predict``."""
        return self.model_with(self.adapter_vector(preference))

    def model_with(self, vector: torch.Tensor):
        """An independent copy of the model with adapter ``vector``."""
        with self._model_lock:
            model = copy.deepcopy(self.model)
        model.set_adapter_vector(vector)
        return model.eval()

    def _sample(self, preferences: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.bundle.adapters.vectors(preferences)

    # -- recommendations ----------------------------------------------------------------------------------------
    def recommend(self, users: Optional[Sequence[Any]] = None, histories: Optional[Sequence[Sequence[Any]]] = None,
                  preference: Any = None, k: Optional[int] = None, exclude_seen: bool = True
                  ) -> List[List[Dict[str, Any]]]:
        """Per user (or history) a list of ``{item, score, title, categories}``, best first, in external tokens."""
        return self.described(self.rank(users, histories, preference, k, exclude_seen))

    def described(self, ranking: Ranking) -> List[List[Dict[str, Any]]]:
        """A ranking's rows as ``{item, score, title, categories}`` in external tokens."""
        describe = self.catalogue.describe
        return [[describe(i, s) for i, s in zip(items, scores)] for items, scores in zip(ranking.items,
                                                                                         ranking.scores)]

    def rank(self, users: Optional[Sequence[Any]] = None, histories: Optional[Sequence[Sequence[Any]]] = None,
             preference: Any = None, k: Optional[int] = None, exclude_seen: bool = True) -> Ranking:
        """:meth:`recommend` in internal ids, with the preference used and whether its adapter was cached."""
        return self.rank_query(self.requests.query(users, histories, preference, k, exclude_seen))

    def rank_query(self, query: Query) -> Ranking:
        """The ranking of an already checked :class:`Query` (the HTTP service checks its body into one)."""
        with self._active_lock:
            self._active += 1
        try:
            return self._rank(query)
        finally:
            with self._active_lock:
                self._active -= 1

    def _rank(self, query: Query) -> Ranking:
        if query.users is not None:
            hidden = self._user_states(query.users)
            seen = [self.catalogue.history(u) for u in query.users]
        else:
            hidden = self._sequence_states(query.sequences, [0] * query.size)
            seen = query.sequences
        vectors, cached = self.adapters.vectors([query.preference])
        adapted = apply_adapter_vector(hidden, vectors[0], self.model.adapter_dim)
        items, values = self.top_k(adapted, seen if query.exclude_seen else None, query.k)
        return Ranking(items, values, query.preference, cached[0])

    @torch.no_grad()
    def top_k(self, adapted: torch.Tensor, seen: Optional[List[torch.Tensor]], k: int):
        """``(items, scores)`` per row of adapted states: from the item index when the bundle has one and the
        catalogue is at least ``serve_index_min_items``, else every item scored exactly."""
        if self.index is not None:
            return index_top_k(self.index, self.model, adapted, seen, k, self.extra_candidates)
        return exact_top_k(self.model.score_representation(adapted), seen, k)

    @torch.no_grad()
    def scores(self, hidden: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """All-item scores ``[B, n_items]`` of backbone states through adapter ``vector`` (a pure function; the
        padding item scores ``-inf``)."""
        adapted = apply_adapter_vector(hidden, vector, self.model.adapter_dim)
        scores = self.model.score_representation(adapted).clone()
        scores[:, 0] = -torch.inf
        return scores

    def validation(self, preference: Any) -> Dict[str, Any]:
        """The validation metrics of the bundle's grid adapter nearest to ``preference``."""
        return self.grid_point(self.preference(preference))

    def grid_point(self, preference: Preference) -> Dict[str, Any]:
        """:meth:`validation` for a checked preference (e.g. ``Ranking.preference``)."""
        nearest = int(preference_distances(preference.tensor[None], self._grid)[0].argmin())
        return {"preference": self.bundle.grid[nearest]["preference"], "metrics": self.bundle.grid[nearest]["metrics"]}

    def warm_up(self, batch_size: int = 1024) -> None:
        """Compute every known user's backbone state now (a service does it before its first request)."""
        users = [u for u in range(1, len(self.catalogue.user_tokens)) if len(self.catalogue.history(u))]
        for start in range(0, len(users), batch_size):
            self._user_states(users[start:start + batch_size])

    # -- inputs -------------------------------------------------------------------------------------------------
    def _user_states(self, user_ids: List[int]) -> torch.Tensor:
        """Backbone states of known users: computed on first use, then reused."""
        index = torch.tensor(user_ids, dtype=torch.long)
        missing = sorted({u for u in user_ids if not bool(self._known[u])})
        empty = [self.catalogue.user_tokens[u] for u in missing if len(self.catalogue.history(u)) == 0]
        if empty:
            raise ValueError(f"user(s) {empty} have no history in the bundle: recommend by history instead")
        if missing:
            states = self._sequence_states([self.catalogue.history(u) for u in missing], missing)
            self._states[missing] = states
            self._known[missing] = True
        return self._states[index]

    def _sequence_states(self, sequences: List[torch.Tensor], users: List[int]) -> torch.Tensor:
        """The frozen backbone's representation ``[B, H]`` of each sequence's last ``MAX_ITEM_LIST_LENGTH`` items."""
        model = self.model
        length = int(model.max_seq_length)
        items = torch.zeros(len(sequences), length, dtype=torch.long)
        lengths = torch.zeros(len(sequences), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            tail = sequence[-length:]
            items[row, :len(tail)] = tail
            lengths[row] = len(tail)
        interaction = Interaction({model.ITEM_SEQ: items, model.ITEM_SEQ_LEN: lengths,
                                   model.USER_ID: torch.tensor(users, dtype=torch.long)})
        with self._model_lock:
            return model.sequence_representation(interaction)
