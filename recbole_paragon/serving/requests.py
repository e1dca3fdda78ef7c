"""What a caller asks for, checked in one place for the Python API and the HTTP service alike.

:class:`Requests` turns raw values — keyword arguments of ``ParagonRecommender.recommend`` / ``rank``, or the fields
of a JSON body — into a :class:`Query`: whom to recommend for (internal ids), the preference, ``k`` and
``exclude_seen``. The preference is validated, normalised and rounded to :data:`DECIMALS` here and nowhere else;
from then on it travels as a :class:`Preference` (the adapter cache's key, the generator's input and what a response
shows are the same numbers). A value is refused with the same words whichever way it came; error messages quote at
most a short prefix of what was sent.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import torch

from recbole_paragon.bundle import Catalogue
from recbole_paragon.echo import brief
from recbole_paragon.preference import as_preference

#: A normalised preference is rounded to this many decimals, once, where it enters.
DECIMALS = 6
#: The fields of a JSON request body (POST /recommend).
BODY_FIELDS = ("user", "history", "preference", "k", "exclude_seen")
#: How callers spell "known users" and "free histories": (name, example) of the Python API and of a JSON body.
Names = Tuple[Tuple[str, str], Tuple[str, str]]
PYTHON_NAMES: Names = (("users", "users=['196']"), ("histories", "histories=[['242', '302']]"))
BODY_NAMES: Names = (("user", '"user": "196"'), ("history", '"history": ["242", "302"]'))


@dataclass(frozen=True, eq=False)
class Preference:
    """A validated preference: ``values`` normalised and rounded (the cache key, what a response shows) and
    ``tensor``, the same numbers as a ``[K]`` float tensor (what the generator is given)."""

    values: Tuple[float, ...]
    tensor: torch.Tensor = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preference) and self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)


@dataclass(frozen=True)
class Query:
    """A checked request: known ``users`` (internal ids) or free ``sequences`` (item-id tensors), never both."""

    users: Optional[List[int]]
    sequences: Optional[List[torch.Tensor]]
    preference: Preference
    k: int
    exclude_seen: bool

    @property
    def size(self) -> int:
        return len(self.users if self.users is not None else self.sequences)


class Requests:
    """The checks of every request a bundle serves (its objectives, catalogue and ``serve_*`` limits)."""

    def __init__(self, objectives: Sequence[str], catalogue: Catalogue, default_k: int, max_k: int,
                 max_history: int) -> None:
        self.objectives = list(objectives)
        self.catalogue = catalogue
        self.default_k, self.max_k, self.max_history = default_k, max_k, max_history

    def preference(self, value: Any) -> Preference:
        """``value`` (a list, tensor or ``"0.3,0.7"`` in objective order, or a map by name) validated, normalised to
        sum to 1 and rounded."""
        if value is None:
            raise ValueError(f"give a preference: one weight per objective ({', '.join(self.objectives)})")
        if isinstance(value, Mapping):
            unknown = sorted(str(name) for name in value if name not in self.objectives)
            if unknown:
                raise ValueError(f"unknown objective(s) {brief(unknown)} in the preference; objectives: "
                                 f"{self.objectives}")
            value = [value.get(name, 0.0) for name in self.objectives]
        weights = tuple(round(float(w), DECIMALS) for w in as_preference(value, self.objectives).tolist())
        return Preference(weights, torch.tensor(weights, dtype=torch.float32))

    def k(self, value: Any) -> int:
        """``k`` (``None``: ``serve_default_k``): an integer from 1 to ``serve_max_k``, never a bool or a string."""
        if value is None:
            return self.default_k
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= self.max_k:
            raise ValueError(f"k must be an integer from 1 to {self.max_k}, got {brief(value)}")
        return int(value)

    @staticmethod
    def exclude_seen(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"exclude_seen must be true or false, got {brief(value)}")
        return value

    def query(self, users: Any = None, histories: Any = None, preference: Any = None, k: Any = None,
              exclude_seen: Any = True, names: Names = PYTHON_NAMES) -> Query:
        """The checked :class:`Query`; ``names`` say how the caller spells users and histories (in errors)."""
        weights = self.preference(preference)
        k, exclude_seen = self.k(k), self.exclude_seen(exclude_seen)
        (user_name, user_example), (history_name, history_example) = names
        if users is not None and histories is not None:
            raise ValueError(f"give either {user_name} or {history_name}, not both")
        if users is None and histories is None:
            raise ValueError(f"say whom to recommend for: give {user_example} (a known user) or {history_example} "
                             f"(item tokens, oldest first)")
        if users is not None:
            return Query(self.catalogue.user_ids(self._list(users, *names[0])), None, weights, k, exclude_seen)
        sequences = [self._history(history) for history in self._list(histories, *names[1])]
        return Query(None, sequences, weights, k, exclude_seen)

    def from_body(self, body: Any) -> Query:
        """The :class:`Query` of a JSON body ``{"user" | "history", "preference", "k", "exclude_seen"}``."""
        if not isinstance(body, dict):
            raise ValueError(f"the body must be a JSON object like {{\"user\": \"196\", \"preference\": [0.7, 0.3]}}, "
                             f"got {brief(body)}")
        unknown = [name for name in body if name not in BODY_FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {brief(unknown)} in the body; fields: {', '.join(BODY_FIELDS)}")
        user, history = body.get("user"), body.get("history")
        return self.query(None if user is None else [user], None if history is None else [history],
                          body.get("preference"), body.get("k"), body.get("exclude_seen", True),
                          names=BODY_NAMES)

    @staticmethod
    def _list(given: Any, name: str, example: str) -> List[Any]:
        if isinstance(given, (str, bytes, int, Mapping)) or not isinstance(given, Sequence) or not given:
            raise ValueError(f"{name} must be a non-empty list, e.g. {example}")
        return list(given)

    def _history(self, history: Any) -> torch.Tensor:
        if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence) or not history:
            raise ValueError(f"each history must be a non-empty list of item tokens, got {brief(history)}")
        if len(history) > self.max_history:
            raise ValueError(f"a history may hold at most {self.max_history} items (serve_max_history), "
                             f"got {len(history)}")
        return torch.tensor(self.catalogue.item_ids(history), dtype=torch.long)

