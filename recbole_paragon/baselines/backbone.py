"""The plain backbone, no adapter: where every method starts from."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register


@register
class Backbone(AdaptationMethod):
    """The same model at every preference: evaluated once, its metrics repeated."""

    name = "backbone"
    _metrics: Optional[Dict[str, float]] = None

    def adapt(self, preference: torch.Tensor) -> Entry:
        if self._metrics is None:
            self._metrics = self.context.evaluate(None)
        return {"metrics": dict(self._metrics), "seconds": 0.0}
