"""The hypernetwork generator: an MLP from the preference to the adapter vector (CMR-style baseline)."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

from recbole_paragon.generators.features import FourierFeatures
from recbole_paragon.generators.state import STATE_FORMAT, PlainStateFile, plain
from recbole_paragon.settings import setting, with_defaults


class HyperNetwork(PlainStateFile, nn.Module):
    """Preference -> parameters MLP: ``Fourier(w) -> hidden -> hidden -> P``, output added to ``base``.

    ``forward(cond [B, Kc]) -> vectors [B, P]``; differentiable, so it can be trained end-to-end on the
    recommendation loss with random preferences (CMR-style). With a ``base`` vector the output layer is
    zero-initialised, so the untrained network returns ``base`` exactly; without one (base = 0) it keeps the
    default init -- an all-zero adapter vector is a stationary point of adapter training (no gradient reaches
    ``W1`` or ``W2``), so starting there would stall.
    """

    kind = "hypernet"
    training = "objectives"  # trained on the preference-weighted objectives directly: GeneratorTrainer
    settings_prefixes = ("generator_", "hypernet_")

    @classmethod
    def for_adapter(cls, cond_dim: int, adapter, config) -> "HyperNetwork":
        """A network for ``adapter``'s vector, starting from its current parameters."""
        return cls(cond_dim, adapter.num_parameters, hidden=int(setting(config, "hypernet_hidden")),
                   base=adapter.get_vector())

    def __init__(self, cond_dim: int, num_parameters: int, hidden: Optional[int] = None,
                 fourier_features: Optional[int] = None, base: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        hidden, fourier_features = map(int, with_defaults("hypernet_", hidden=hidden,
                                                          fourier_features=fourier_features).values())
        if min(cond_dim, num_parameters, hidden) <= 0 or fourier_features < 0:
            raise ValueError("HyperNetwork sizes must be positive")
        self.config = dict(cond_dim=int(cond_dim), num_parameters=int(num_parameters), hidden=int(hidden),
                           fourier_features=int(fourier_features))
        self.cond_dim, self.num_parameters = int(cond_dim), int(num_parameters)
        self.fourier = FourierFeatures(cond_dim, fourier_features)
        self.net = nn.Sequential(nn.Linear(self.fourier.out_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, num_parameters))
        if base is None:
            base_vector = torch.zeros(num_parameters)
        else:
            base_vector = torch.as_tensor(base, dtype=torch.float32).detach().clone().reshape(-1)
            if base_vector.numel() != num_parameters or not torch.isfinite(base_vector).all():
                raise ValueError(f"base must be a finite vector of {num_parameters} values")
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self.register_buffer("base", base_vector)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=self.base.device)
        if cond.dim() == 1 and cond.numel() == self.cond_dim:
            cond = cond.unsqueeze(0)
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            raise ValueError(f"condition must have shape [B, {self.cond_dim}], got {tuple(cond.shape)}")
        return self.base + self.net(self.fourier(cond))

    def state_dict_plain(self) -> Dict[str, Any]:
        return {"format": STATE_FORMAT, "kind": "hypernet", "config": dict(self.config),
                "weights": plain(self.state_dict())}

    @classmethod
    def from_state(cls, state: Dict[str, Any]) -> "HyperNetwork":
        if state.get("format") != STATE_FORMAT or state.get("kind") not in ("hypernet", "hypernetwork"):
            raise ValueError(f"not a hypernetwork state (format={state.get('format')!r})")
        network = cls(**state["config"])
        network.load_state_dict(state["weights"])
        return network
