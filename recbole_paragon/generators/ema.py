"""Exponential moving average of a denoiser's weights (sampling uses the average)."""
from __future__ import annotations

import copy
from typing import Any, Dict

import torch
from torch import nn


class EMA:
    """Exponential moving average of a module's weights, kept in a frozen copy :attr:`module` (eval mode).

    ``update(model)`` after each optimiser step: ``ema ← d·ema + (1−d)·θ`` with ``d = min(decay, (1+n)/(10+n))``
    (warm-up, so early averages are not dominated by the random initialisation); buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.num_updates += 1
        current = dict(model.named_parameters())
        for name, average in self.module.named_parameters():
            average.lerp_(current[name].detach().to(average), 1.0 - decay)
        buffers = dict(model.named_buffers())
        for name, buffer in self.module.named_buffers():
            buffer.copy_(buffers[name])

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s weights with the averages."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> Dict[str, Any]:
        return {"module": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
                "num_updates": self.num_updates, "decay": self.decay, "warmup": self.warmup}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay, self.warmup = float(state["decay"]), bool(state["warmup"])

