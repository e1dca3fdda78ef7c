"""Parameter arithmetic over the bank: interpolating the one-objective adapters, the nearest bank adapter(s). (The
barycentric blend of the adapters around a preference is a generator kind, generators/barycentric.py, so that it can
be served: its evaluation method ``barycentric_soup`` is registered with the other generators'.)"""
from __future__ import annotations

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.preference import SAME_PREFERENCE, preference_distances


@register
class Soup(AdaptationMethod):
    """``Σ wᵢ·θᵢ`` of the bank adapters tuned for each objective alone (needs every one-objective preference)."""

    name = "soup"

    def adapt(self, preference: torch.Tensor) -> Entry:
        context = self.context
        distance = preference_distances(torch.eye(len(preference)), context.bank_preferences)
        if (distance.min(1).values >= SAME_PREFERENCE).any():
            raise ValueError("soup needs bank adapters at every one-objective preference (e.g. w=(1,0) and (0,1))")
        ends = context.bank_vectors[distance.argmin(1)]
        vector, seconds = timed(lambda: preference @ ends)
        return {"metrics": context.evaluate(vector), "seconds": seconds}


@register
class Nearest(AdaptationMethod):
    """The mean of the ``count`` bank adapters with the closest preferences (held-out preferences excluded)."""

    name = "nearest"
    count = 1

    def adapt(self, preference: torch.Tensor) -> Entry:
        context = self.context

        def pick():
            distance = preference_distances(preference[None], context.lookup_preferences)[0]
            return context.lookup_vectors[distance.topk(self.count, largest=False).indices].mean(0)

        vector, seconds = timed(pick)
        return {"metrics": context.evaluate(vector), "seconds": seconds}


@register
class NeighbourSoup(Nearest):
    name = "neighbour_soup"
    count = 2
