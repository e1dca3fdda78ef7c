"""The preference-conditioned adapter (MultiTRON-style): one adapter whose input is ``[h; φ(w)]``.

MultiTRON (otto-de/MultiTRON, RecSys 2024) feeds the preference to the network with its input and trains it end
to end on Dirichlet-sampled preferences. For the adapter ``h + W2·ReLU(W1·h + U·φ(w) + b1) + b2`` the preference
only ever enters through ``U·φ(w) + b1``: for a given ``w`` it *is* a plain adapter whose first bias is shifted.
So it is written here as the most constrained generator — ``w -> [W1, b1 + U·φ(w), W2, b2]`` with ``φ`` fixed
Fourier features — which the plugin then serves, evaluates and stores like any other: the cheap competitor to
generating every parameter. Trained like the hypernetwork (``training/generator_trainer.py``), on the
preference-weighted objectives with ``w ~ Dirichlet(conditioned_concentration)``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

from recbole_paragon.generators.features import FourierFeatures
from recbole_paragon.generators.state import STATE_FORMAT, PlainStateFile, plain
from recbole_paragon.settings import with_defaults


class ConditionedAdapter(PlainStateFile, nn.Module):
    """``forward(cond [B, K]) -> adapter vectors [B, P]``: a shared adapter whose ``b1`` moves with ``φ(w)``.

    ``base`` (the adapter vector training starts from; default: a fresh adapter's) fixes ``W1, b1, W2, b2``' start;
    ``U`` starts at zero, so the untrained model returns ``base`` for every preference.
    """

    kind = "conditioned"
    training = "objectives"  # trained on the preference-weighted objectives directly: GeneratorTrainer
    settings_prefixes = ("generator_", "conditioned_")

    @classmethod
    def for_adapter(cls, cond_dim: int, adapter, config) -> "ConditionedAdapter":
        """A conditioned version of ``adapter``, starting from its current parameters."""
        return cls(cond_dim, adapter.hidden_size, adapter.adapter_dim, base=adapter.get_vector())

    def __init__(self, cond_dim: int, hidden_size: int, adapter_dim: int, fourier_features: Optional[int] = None,
                 base: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        fourier_features = int(with_defaults("conditioned_", fourier_features=fourier_features)["fourier_features"])
        if min(cond_dim, hidden_size, adapter_dim) <= 0 or fourier_features < 0:
            raise ValueError("ConditionedAdapter sizes must be positive")
        self.config = dict(cond_dim=int(cond_dim), hidden_size=int(hidden_size), adapter_dim=int(adapter_dim),
                           fourier_features=fourier_features)
        self.cond_dim, self.hidden_size, self.adapter_dim = int(cond_dim), int(hidden_size), int(adapter_dim)
        self.num_parameters = 2 * self.hidden_size * self.adapter_dim + self.adapter_dim + self.hidden_size
        start = torch.zeros(self.num_parameters) if base is None else torch.as_tensor(base, dtype=torch.float32)
        if start.numel() != self.num_parameters or not torch.isfinite(start).all():
            raise ValueError(f"base must be a finite adapter vector of {self.num_parameters} values")
        self.vector = nn.Parameter(start.detach().clone().reshape(-1))
        self.fourier = FourierFeatures(cond_dim, fourier_features)
        self.shift = nn.Linear(self.fourier.out_dim, self.adapter_dim, bias=False)
        nn.init.zeros_(self.shift.weight)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=self.vector.device)
        if cond.dim() == 1 and cond.numel() == self.cond_dim:
            cond = cond.unsqueeze(0)
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            raise ValueError(f"condition must have shape [B, {self.cond_dim}], got {tuple(cond.shape)}")
        start = self.hidden_size * self.adapter_dim  # layout W1, b1, W2, b2: b1 follows W1
        vectors = self.vector.expand(len(cond), -1)
        bias = vectors[:, start:start + self.adapter_dim] + self.shift(self.fourier(cond))
        return torch.cat([vectors[:, :start], bias, vectors[:, start + self.adapter_dim:]], dim=1)

    def state_dict_plain(self) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "kind": "conditioned", "config": dict(self.config),
                "weights": plain(self.state_dict())}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "ConditionedAdapter":
        if state.get("format") != STATE_FORMAT or state.get("kind") != "conditioned":
            raise ValueError(f"not a conditioned-adapter state (format={state.get('format')!r})")
        model = cls(**state["config"])
        model.load_state_dict(state["weights"])
        return model
