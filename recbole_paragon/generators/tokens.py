"""Adapter vectors as token sequences (exact, invertible) and their per-parameter normalisation."""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from recbole_paragon.generators.conditions import TOKEN_MODES, check_choice
from recbole_paragon.model.adapter import adapter_size


class AdapterTokenizer:
    """Exact, invertible map between flat adapter vectors ``[N, P]`` and token sequences ``[N, T, D]``.

    ``mode="hidden_unit"`` (default): one token per bottleneck unit ``i`` of the adapter holding
    ``(W1[i, :], b1[i], W2[:, i])`` -- ``2H + 1`` values -- plus one last token holding ``b2`` (``H`` values,
    zero-padded to ``2H + 1``). For 64 -> 8 -> 64: ``T = 9`` tokens of ``D = 129`` values. Permuting the adapter's
    hidden units permutes the tokens, which suits a transformer.

    ``mode="chunk"`` (reference code): the flat vector cut into consecutive tokens of ``token_size`` values, the
    last one zero-padded. For 1096 parameters and ``token_size=8``: ``T = 137`` tokens of ``D = 8``.

    :attr:`mask` ``[T, D]`` is 1 where a token value is a real parameter and 0 on padding.
    """

    def __init__(self, hidden_size: int, adapter_dim: int, mode: str = "hidden_unit", token_size: int = 8) -> None:
        if hidden_size <= 0 or adapter_dim <= 0:
            raise ValueError(f"adapter sizes must be positive, got hidden_size={hidden_size}, "
                             f"adapter_dim={adapter_dim}")
        self.mode = check_choice("token mode", mode, TOKEN_MODES)
        self.hidden_size = int(hidden_size)
        self.adapter_dim = int(adapter_dim)
        self.num_parameters = adapter_size(hidden_size, adapter_dim)
        if mode == "hidden_unit":
            self.num_tokens = self.adapter_dim + 1
            self.token_dim = 2 * self.hidden_size + 1
            self.token_size = self.token_dim
        else:
            if token_size <= 0:
                raise ValueError(f"token_size must be positive, got {token_size}")
            self.token_size = int(token_size)
            self.token_dim = self.token_size
            self.num_tokens = -(-self.num_parameters // self.token_size)
        self.mask = self.tokens(torch.ones(1, self.num_parameters))[0]

    @property
    def shape(self) -> Tuple[int, int]:
        """``(T, D)``."""
        return self.num_tokens, self.token_dim

    def _check_vectors(self, vectors: torch.Tensor) -> None:
        if vectors.dim() != 2 or vectors.shape[1] != self.num_parameters:
            raise ValueError(f"expected vectors [N, {self.num_parameters}], got {tuple(vectors.shape)}")

    def tokens(self, vectors: torch.Tensor) -> torch.Tensor:
        """Flat vectors ``[N, P]`` -> tokens ``[N, T, D]``."""
        self._check_vectors(vectors)
        n, h, d = vectors.shape[0], self.hidden_size, self.adapter_dim
        if self.mode == "chunk":
            padded = vectors.new_zeros(n, self.num_tokens * self.token_size)
            padded[:, : self.num_parameters] = vectors
            return padded.view(n, self.num_tokens, self.token_size)
        w1, b1, w2, b2 = torch.split(vectors, [d * h, d, h * d, h], dim=1)
        units = torch.cat([w1.reshape(n, d, h), b1.unsqueeze(-1), w2.reshape(n, h, d).transpose(1, 2)], dim=-1)
        last = F.pad(b2, (0, self.token_dim - h)).unsqueeze(1)
        return torch.cat([units, last], dim=1)

    def vectors(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``[N, T, D]`` -> flat vectors ``[N, P]`` (exact inverse of :meth:`tokens`; padding is dropped)."""
        if tokens.dim() != 3 or tuple(tokens.shape[1:]) != self.shape:
            raise ValueError(f"expected tokens [N, {self.num_tokens}, {self.token_dim}], got {tuple(tokens.shape)}")
        n, h, d = tokens.shape[0], self.hidden_size, self.adapter_dim
        if self.mode == "chunk":
            return tokens.reshape(n, -1)[:, : self.num_parameters].contiguous()
        units, last = tokens[:, :d], tokens[:, d]
        w1 = units[..., :h].reshape(n, d * h)
        b1 = units[..., h]
        w2 = units[..., h + 1:].transpose(1, 2).reshape(n, h * d)
        return torch.cat([w1, b1, w2, last[:, :h]], dim=1)


class Normalizer:
    """Per-parameter standardisation fitted on a bank of vectors ``[N, P]``.

    ``std`` is floored at ``floor × mean(std)`` so parameters that barely vary across the bank (or a bank of one
    vector) are not blown up; if every std is 0 the floor is 1.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(f"mean and std must be 1-D of equal length, got {tuple(mean.shape)}, {tuple(std.shape)}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()) or (std <= 0).any():
            raise ValueError("normaliser mean/std must be finite and std positive")
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, vectors: torch.Tensor, floor: float = 0.1) -> "Normalizer":
        vectors = torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.dim() != 2 or vectors.shape[0] == 0:
            raise ValueError(f"expected a non-empty bank [N, P], got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("bank contains NaN or inf")
        if not (0.0 < floor <= 1.0):
            raise ValueError(f"std floor fraction must be in (0, 1], got {floor}")
        mean = vectors.mean(0)
        std = vectors.std(0, unbiased=False)
        scale = std.mean().item()
        std = std.clamp_min(floor * scale if scale > 0 else 1.0)
        return cls(mean, std)

    @property
    def num_parameters(self) -> int:
        return self.mean.numel()

    def normalize(self, vectors: torch.Tensor) -> torch.Tensor:
        return (vectors - self.mean.to(vectors)) / self.std.to(vectors)

    def denormalize(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors * self.std.to(vectors) + self.mean.to(vectors)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, state: Dict[str, torch.Tensor]) -> "Normalizer":
        return cls(state["mean"], state["std"])

