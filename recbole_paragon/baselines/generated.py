"""Generated adapters: the diffusion generator (Paragon), the hypernetwork and the conditioned adapter, one pass per
preference."""
from __future__ import annotations

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.generators import GENERATORS


class Generated(AdaptationMethod):
    """The adapter a trained generator of ``kind`` produces for the preference."""

    kind: str = ""

    def prepare(self) -> None:
        """A deployed generator is warm: the first call's set-up is not timed."""
        count = len(self.context.trainer.objective_names)
        self.context.generators[self.kind].vectors(torch.full((1, count), 1.0 / count))

    def adapt(self, preference: torch.Tensor) -> Entry:
        vectors, seconds = timed(lambda: self.context.generators[self.kind].vectors(preference[None]))
        return {"metrics": self.context.evaluate(vectors[0]), "seconds": seconds}


#: One evaluation method per generator kind, named after it (``diffusion``, ``hypernet``, ``conditioned``...).
for _kind in GENERATORS:
    register(type(f"Generated{_kind.title()}", (Generated,), {"name": _kind, "kind": _kind,
                                                                "__doc__": f"The {_kind} generator's adapter."}))
