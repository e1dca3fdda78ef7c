"""Checks shared by the generators, and the one place a generator condition vector is built."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

TOKEN_MODES = ("hidden_unit", "chunk")
CONDITION_MODES = ("pre", "post", "adaptive")
SCHEDULES = ("cosine", "linear")
PREDICTIONS = ("x0", "eps", "v")
SAMPLERS = ("ddim", "ddpm")


def check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def as_condition(cond, cond_dim: int) -> torch.Tensor:
    """``cond`` as a finite float tensor ``[B, cond_dim]`` (a 1-D input of length ``cond_dim`` is one row)."""
    cond = torch.as_tensor(cond, dtype=torch.float32)
    if cond.dim() == 1 and cond.numel() == cond_dim:
        cond = cond.unsqueeze(0)
    if cond.dim() != 2 or cond.shape[1] != cond_dim:
        raise ValueError(f"condition must have shape [B, {cond_dim}], got {tuple(cond.shape)}")
    if cond.shape[0] == 0:
        raise ValueError("condition batch is empty")
    if not torch.isfinite(cond).all():
        raise ValueError("condition contains NaN or inf")
    return cond



def condition_vectors(preferences: torch.Tensor, step_fraction: Optional[torch.Tensor] = None,
                      with_step: bool = True, with_zero_flags: bool = False) -> torch.Tensor:
    """Generator conditions: the preference ``[B, K]``; with ``with_zero_flags`` then one flag per weight that is
    exactly 0 (an objective without any gradient, which tuning answers unlike any small weight); with ``with_step``
    then the checkpoint step as a fraction of the tuning length (default 1, the final step, which generation asks
    for)."""
    preferences = torch.as_tensor(preferences, dtype=torch.float32)
    if preferences.dim() == 1:
        preferences = preferences.unsqueeze(0)
    if with_zero_flags:
        preferences = torch.cat([preferences, (preferences == 0).float()], dim=1)
    if not with_step:
        return preferences
    if step_fraction is None:
        step_fraction = torch.ones(len(preferences))
    step = torch.as_tensor(step_fraction, dtype=torch.float32).reshape(-1, 1).expand(preferences.shape[0], 1)
    return torch.cat([preferences, step], dim=1)
