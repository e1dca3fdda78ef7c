"""A trained generator with its metadata: preferences in, adapter vectors out."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from recbole_paragon.generators.conditions import condition_vectors


class GeneratedAdapters:
    """A generator and what it needs to turn preferences into adapter vectors (objectives, sampling defaults)."""

    def __init__(self, generator, metadata: Dict[str, Any]) -> None:
        self.generator = generator
        self.metadata = metadata
        self.objectives = list(metadata["objectives"])
        self.sampling = dict(metadata["sampling"])

    def vectors(self, preferences: torch.Tensor, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                seed: Optional[int] = None) -> torch.Tensor:
        """Adapter vectors ``[B, P]`` for validated, normalised preferences ``[B, K]`` in one sampling pass."""
        if preferences.dim() != 2 or preferences.shape[1] != len(self.objectives):
            raise ValueError(f"preferences must be [B, {len(self.objectives)}] (objectives {self.objectives}), "
                             f"got shape {tuple(preferences.shape)}")
        if not hasattr(self.generator, "generate"):  # a direct map w -> vector (hypernetwork, conditioned adapter)
            with torch.no_grad():
                return self.generator(preferences)
        return self.generator.generate(
            condition_vectors(preferences, with_step=bool(self.metadata.get("condition_on_step")),
                              with_zero_flags=bool(self.metadata.get("condition_on_zero"))),
            steps=int(self.sampling["steps"] if steps is None else steps),
            sampler=self.sampling["sampler"],
            guidance_scale=float(self.sampling["guidance_scale"] if guidance_scale is None else guidance_scale),
            seed=self.sampling["seed"] if seed is None else seed,
            num_threads=self.sampling.get("num_threads"),
            shared_noise=bool(self.sampling.get("shared_noise", False)),
        )
