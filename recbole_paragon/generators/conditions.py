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
                      with_step: bool = True, with_zero_flags: bool = False,
                      zero_flags_of: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Generator conditions: the preference ``[B, K]``; with ``with_zero_flags`` then one flag per weight that is
    exactly 0 (an objective without any gradient, which tuning answers unlike any small weight) in ``zero_flags_of``
    (default: ``preferences``; the tuned preferences when ``preferences`` are jittered copies); with ``with_step``
    then the checkpoint step as a fraction of the tuning length (default 1, the final step, which generation asks
    for)."""
    preferences = torch.as_tensor(preferences, dtype=torch.float32)
    if preferences.dim() == 1:
        preferences = preferences.unsqueeze(0)
    if with_zero_flags:
        flagged = preferences if zero_flags_of is None else torch.as_tensor(zero_flags_of, dtype=torch.float32) \
            .reshape(preferences.shape)
        preferences = torch.cat([preferences, (flagged == 0).float()], dim=1)
    if not with_step:
        return preferences
    if step_fraction is None:
        step_fraction = torch.ones(len(preferences))
    step = torch.as_tensor(step_fraction, dtype=torch.float32).reshape(-1, 1).expand(preferences.shape[0], 1)
    return torch.cat([preferences, step], dim=1)


def bank_spacing(preferences: torch.Tensor) -> float:
    """Median over distinct preferences of the L-inf distance to the nearest other one (a grid's step)."""
    distinct = torch.unique(torch.as_tensor(preferences, dtype=torch.float32), dim=0)
    if len(distinct) < 2:
        return 0.0
    distance = (distinct[:, None, :] - distinct[None, :, :]).abs().amax(-1)
    distance.fill_diagonal_(float("inf"))
    return float(distance.amin(1).median())


def jittered_preferences(preferences: torch.Tensor, scale: float, generator: Optional[torch.Generator] = None
                         ) -> torch.Tensor:
    """``preferences`` plus Gaussian noise of sd ``scale`` per weight, put back on the simplex (clamped at 0,
    renormalised; a row clamped to all zeros keeps its original preference)."""
    if scale <= 0:
        return preferences
    noisy = (preferences + scale * torch.randn(preferences.shape, generator=generator)).clamp_min(0.0)
    total = noisy.sum(1, keepdim=True)
    return torch.where(total > 0, noisy / total.clamp_min(1e-12), preferences)
