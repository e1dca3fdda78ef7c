"""Fixed Fourier features of conditions (preference weights, step fractions) and of diffusion timesteps."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierFeatures(nn.Module):
    """``c [B, K] -> [c, sin(π k c), cos(π k c)]`` for ``k = 1..num_frequencies`` (output ``K·(2F+1)``).

    Meant for inputs in ``[0, 1]`` (preference weights, step fractions); frequencies are fixed, not learned.
    """

    def __init__(self, in_dim: int, num_frequencies: int) -> None:
        super().__init__()
        if in_dim <= 0 or num_frequencies < 0:
            raise ValueError(f"bad Fourier sizes in_dim={in_dim}, num_frequencies={num_frequencies}")
        self.in_dim = in_dim
        self.register_buffer("frequencies", math.pi * torch.arange(1, num_frequencies + 1, dtype=torch.float32),
                             persistent=False)
        self.out_dim = in_dim * (2 * num_frequencies + 1)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        angles = cond.unsqueeze(-1) * self.frequencies  # [B, K, F]
        return torch.cat([cond, angles.sin().flatten(1), angles.cos().flatten(1)], dim=-1)


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal (log-spaced Fourier) features of integer timesteps ``t [B] -> [B, dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float().unsqueeze(-1) * freqs
    features = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return F.pad(features, (0, dim - 2 * half))

