"""The plain backbone, no adapter: where every method starts from."""
from __future__ import annotations

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register


@register
class Backbone(AdaptationMethod):
    name = "backbone"

    def adapt(self, preference: torch.Tensor) -> Entry:
        return {"metrics": self.context.evaluate(None), "seconds": 0.0}
