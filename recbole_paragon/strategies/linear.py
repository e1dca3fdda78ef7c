"""Linear scalarisation ``Σ wᵢ·Lᵢ`` (Paragon's adapter tuning)."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch

from recbole_paragon.strategies.base import Strategy


class Linear(Strategy):
    """One backward pass of the preference-weighted sum of the losses."""

    name = "linear"

    def step(self, losses: List[torch.Tensor], optimizer: torch.optim.Optimizer, parameters: List[torch.Tensor],
             rows: Optional[torch.Tensor] = None) -> Dict[str, float]:
        weights = self.preference.to(losses[0].device)
        total = sum(w * loss for w, loss in zip(weights, losses))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        return {"loss": float(total.detach())}
