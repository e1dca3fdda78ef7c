"""The one interface every multi-objective strategy implements (as LibMTL's weighting methods do).

A strategy owns one optimisation step: given the per-objective losses it produces gradients, combines them its own
way and applies the update with the optimizer. The trainer never knows which strategy runs.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch


class Strategy(ABC):
    """Combine K objective losses into one parameter update, steered by a preference ``w`` (sums to 1)."""

    name: str = ""

    def __init__(self, config, preference: Sequence[float]) -> None:
        self.config = config
        self.preference = torch.as_tensor(list(preference), dtype=torch.float32)
        self.epoch = 0

    @abstractmethod
    def step(
        self,
        losses: List[torch.Tensor],
        optimizer: torch.optim.Optimizer,
        parameters: List[torch.Tensor],
        rows: Optional[torch.Tensor] = None,
    ) -> Dict[str, float]:
        """Zero grads, back-propagate ``losses`` (one scalar per objective), combine, and step ``optimizer``.

        ``parameters`` are the trainable tensors; ``rows`` is the per-user representation ``[B, H]`` the losses were
        computed from (strategies that weight per user use it). Returns scalars worth logging.
        """

    def on_epoch_end(self, epoch: int) -> None:
        """Called by the trainer after each epoch (strategies with epoch schedules use it)."""
        self.epoch = epoch + 1
