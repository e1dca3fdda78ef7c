"""Where bank tuning stopped: the objectives' gradients left at the bank's final adapters, over preferences.

Tuning stops after ``adapter_steps`` Adam steps, short of the weighted objective's optimum (the diversity metric still
rises at the last step), so a generator fine-tuned to minimise ``w · L`` lands beyond where re-tuning would. With
``g(w)`` the weighted gradient that tuning left at the bank adapter of ``w``, fine-tuning on ``w · L(θ) − ⟨g(w), θ⟩``
has its fixed point where ``∇ w · L(θ) = g(w)``: the bank adapters themselves at bank preferences, and between them
wherever the objectives' curvature carries that condition.
"""
from __future__ import annotations

from typing import Dict

import torch

from recbole_paragon.model.adapter import apply_adapter_vector
from recbole_paragon.objectives.base import Scores
from recbole_paragon.training.bank_interpolation import neighbour_weights


class TuningResiduals:
    """Per-objective gradients ``[B, K, P]`` at the final bank adapters of ``B`` preferences, and ``g(w)`` for any
    preference ``w``: ``Σ_i w_i · Ĝ_i(w)``, with ``Ĝ_i`` interpolated (inverse distance over the ``K`` nearest bank
    preferences that share ``w``'s exactly-zero weights, or over all of them where none does; for two objectives
    this is linear interpolation between the two neighbours)."""

    def __init__(self, preferences: torch.Tensor, gradients: torch.Tensor) -> None:
        if preferences.dim() != 2 or gradients.dim() != 3 or gradients.shape[:2] != preferences.shape:
            raise ValueError(f"expected preferences [B, K] and gradients [B, K, P], got {tuple(preferences.shape)} "
                             f"and {tuple(gradients.shape)}")
        self.preferences, self.gradients = preferences.float(), gradients.float()

    @classmethod
    def measure(cls, trainer, bank_rows: Dict[str, torch.Tensor], rows: int, seed: int,
                chunk: int = 1024) -> "TuningResiduals":
        """The gradients of ``trainer``'s objectives (divided by its loss scales, as in tuning) at the final-step
        adapters of ``bank_rows`` (``preferences``, ``steps``, ``vectors``; seeds of one preference averaged), on
        ``rows`` training states drawn with ``seed``."""
        final = bank_rows["steps"] == bank_rows["steps"].max()
        preferences, inverse = torch.unique(bank_rows["preferences"][final], dim=0, return_inverse=True)
        vectors = bank_rows["vectors"][final]
        cache = trainer.caches["train"]
        index = torch.randperm(len(cache), generator=torch.Generator().manual_seed(seed))[:rows]
        scales = trainer.loss_scales()
        gradients = torch.zeros(len(preferences), len(trainer.objectives), vectors.shape[1])
        counts = torch.bincount(inverse, minlength=len(preferences)).float()
        for row, vector in zip(inverse.tolist(), vectors):
            gradients[row] += cls._gradients(trainer, cache, index, vector, scales, chunk) / counts[row]
        return cls(preferences, gradients)

    @staticmethod
    def _gradients(trainer, cache, index: torch.Tensor, vector: torch.Tensor, scales, chunk: int) -> torch.Tensor:
        """``[K, P]``: each objective's gradient at ``vector``, averaged over the rows of ``index`` chunk by chunk."""
        vector = vector.detach().clone().requires_grad_(True)
        total = torch.zeros(len(trainer.objectives), vector.numel())
        for part in index.split(chunk):
            batch = cache.batch(part)
            adapted = apply_adapter_vector(batch.hidden, vector, trainer.model.adapter.adapter_dim)
            scores = Scores(adapted, trainer.model)
            losses = [o.loss(batch, adapted, scores) for o in trainer.objectives]
            if scales is not None:
                losses = [loss / scale for loss, scale in zip(losses, scales)]
            for i, loss in enumerate(losses):
                grad, = torch.autograd.grad(loss, vector, retain_graph=i + 1 < len(losses))
                total[i] += grad * (len(part) / len(index))
        return total

    def at(self, preferences: torch.Tensor) -> torch.Tensor:
        """``g(w)`` ``[G, P]`` for ``preferences [G, K]``: the weighted gradient tuning would leave at ``w``."""
        interpolated = torch.einsum("gb,bkp->gkp", neighbour_weights(self.preferences, preferences)[0], self.gradients)
        return torch.einsum("gk,gkp->gp", preferences.float(), interpolated)
