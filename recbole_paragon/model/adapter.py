"""Residual bottleneck adapter placed on a backbone's sequence representation.

``h -> h + W2 · ReLU(W1 · h + b1) + b2`` with ``W2, b2`` zero-initialised, so an untuned adapter is the identity.
Its parameters read and write as one flat vector in the order ``W1, b1, W2, b2``; the functional form
:func:`apply_adapter_vector` runs a batch of flat vectors without touching a module (generators use it).
"""
from __future__ import annotations

import torch
from torch import nn


class Adapter(nn.Module):
    """``hidden_size -> adapter_dim -> hidden_size`` residual bottleneck (64 -> 8 -> 64 has 1096 parameters)."""

    def __init__(self, hidden_size: int, adapter_dim: int = 8) -> None:
        super().__init__()
        if hidden_size <= 0 or adapter_dim <= 0:
            raise ValueError(f"adapter sizes must be positive, got hidden_size={hidden_size}, adapter_dim={adapter_dim}")
        self.hidden_size = hidden_size
        self.adapter_dim = adapter_dim
        self.down = nn.Linear(hidden_size, adapter_dim)
        self.up = nn.Linear(adapter_dim, hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default init for the down-projection, zeros for the up-projection: the adapter starts as the identity."""
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    @property
    def num_parameters(self) -> int:
        return adapter_size(self.hidden_size, self.adapter_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(torch.relu(self.down(hidden)))

    def get_vector(self) -> torch.Tensor:
        """All parameters as one detached flat vector (``W1, b1, W2, b2``)."""
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()]).clone()

    def set_vector(self, vector: torch.Tensor) -> None:
        """Overwrite all parameters from a flat vector of length :attr:`num_parameters`."""
        vector = torch.as_tensor(vector)
        if vector.dim() != 1 or vector.numel() != self.num_parameters:
            raise ValueError(
                f"adapter vector must be 1-D with {self.num_parameters} values "
                f"(hidden_size={self.hidden_size}, adapter_dim={self.adapter_dim}), got shape {tuple(vector.shape)}"
            )
        if not torch.isfinite(vector).all():
            raise ValueError("adapter vector contains NaN or inf")
        offset = 0
        with torch.no_grad():
            for parameter in self.parameters():
                n = parameter.numel()
                parameter.copy_(vector[offset:offset + n].view_as(parameter).to(parameter))
                offset += n


def adapter_size(hidden_size: int, adapter_dim: int) -> int:
    """Number of parameters of an adapter: ``2·H·d + d + H``."""
    return 2 * hidden_size * adapter_dim + adapter_dim + hidden_size


def split_adapter_vectors(vectors: torch.Tensor, hidden_size: int, adapter_dim: int):
    """Views ``(W1 [.., d, H], b1 [.., d], W2 [.., H, d], b2 [.., H])`` of flat vectors with leading batch dims."""
    lead = vectors.shape[:-1]
    sizes = [adapter_dim * hidden_size, adapter_dim, hidden_size * adapter_dim, hidden_size]
    if vectors.shape[-1] != sum(sizes):
        raise ValueError(f"expected adapter vectors of length {sum(sizes)}, got {vectors.shape[-1]}")
    w1, b1, w2, b2 = torch.split(vectors, sizes, dim=-1)
    return (w1.reshape(*lead, adapter_dim, hidden_size), b1, w2.reshape(*lead, hidden_size, adapter_dim), b2)


def apply_adapter_vector(hidden: torch.Tensor, vector: torch.Tensor, adapter_dim: int) -> torch.Tensor:
    """Functional adapter: ``hidden [B, H]`` through one flat vector ``[P]`` or one vector per row ``[B, P]``."""
    w1, b1, w2, b2 = split_adapter_vectors(vector, hidden.shape[-1], adapter_dim)
    if vector.dim() == 1:
        return hidden + torch.relu(hidden @ w1.T + b1) @ w2.T + b2
    inner = torch.relu(torch.einsum("bh,bdh->bd", hidden, w1) + b1)
    return hidden + torch.einsum("bd,bhd->bh", inner, w2) + b2
