"""Parameter arithmetic over the bank: interpolating the one-objective adapters, the nearest bank adapter(s), the
barycentric blend of the adapters around a preference."""
from __future__ import annotations

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.preference import SAME_PREFERENCE, preference_distances
from recbole_paragon.training.bank_interpolation import barycentric_weights, cell_weights, delaunay


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


@register
class BarycentricSoup(AdaptationMethod):
    """``Σ λⱼ·θⱼ`` of the bank adapters at the corners of the Delaunay cell of the bank preferences (held-out ones
    excluded) that holds the preference, ``λ`` its barycentric coordinates there: the K nearest bank adapters that
    surround it, averaged as the preference sits between them. Outside the bank's hull, the nearest adapter."""

    name = "barycentric_soup"

    def prepare(self) -> None:
        """The bank's cells, found once (a deployed lookup would keep them)."""
        bank = self.context.lookup_preferences.double()[:, :-1]
        self.triangulation = delaunay(bank) if bank.shape[1] >= 2 else None

    def adapt(self, preference: torch.Tensor) -> Entry:
        context = self.context

        def blend():
            query = preference[None, :-1].double()
            weights = (cell_weights(self.triangulation, query) if self.triangulation is not None else
                       barycentric_weights(context.lookup_preferences.double()[:, :-1], query))[0].float()
            if weights.sum() < 0.5:  # outside the bank's hull: the nearest adapter
                weights = torch.zeros(len(context.lookup_preferences))
                weights[preference_distances(preference[None], context.lookup_preferences)[0].argmin()] = 1.0
            return weights @ context.lookup_vectors

        vector, seconds = timed(blend)
        return {"metrics": context.evaluate(vector), "seconds": seconds}
