"""The one interface every multi-objective strategy implements (as LibMTL's weighting methods do).

A strategy owns one optimisation step: given the per-objective losses it produces gradients, combines them its own
way and applies the update with the optimizer. The trainer never knows which strategy runs.

Besides the abstract :class:`Strategy`, this module holds the small helpers the strategies share:
:func:`check_preference`, :func:`trainable_parameters` and :func:`task_gradients`.
Strategies read their options with :func:`recbole_paragon.settings.setting` (defaults: ``properties/overall.yaml``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence

import torch



def check_preference(preference: torch.Tensor) -> torch.Tensor:
    """Validate a preference vector: 1-D, finite, non-negative, positive sum. Returns it unchanged."""
    if preference.dim() != 1 or preference.numel() == 0:
        raise ValueError(f"preference must be a non-empty 1-D sequence, got shape {tuple(preference.shape)}")
    if not bool(torch.isfinite(preference).all()) or bool((preference < 0).any()) or float(preference.sum()) <= 0:
        raise ValueError(f"preference must be finite, non-negative and not all zero, got {preference.tolist()}")
    return preference


def trainable_parameters(parameters: Optional[Sequence[torch.Tensor]],
                         optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    """The tensors of ``parameters`` that require grad (all of the optimizer's when ``parameters`` is empty)."""
    if not parameters:
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
    return [p for p in parameters if p.requires_grad]


def task_gradients(loss: torch.Tensor, tensors: Sequence[torch.Tensor], retain_graph: bool = True,
                   none_as_zero: bool = True) -> List[Optional[torch.Tensor]]:
    """``∂loss/∂t`` for each tensor ``t``, detached.

    Where the loss does not depend on ``t`` the entry is zeros (``None`` when ``none_as_zero`` is false, so callers
    can skip tensors no objective reaches, as ``optimizer.step()`` skips parameters whose ``.grad`` is ``None``).
    """
    if not loss.requires_grad:
        grads = [None] * len(tensors)
    else:
        grads = torch.autograd.grad(loss, list(tensors), retain_graph=retain_graph, allow_unused=True)
    if none_as_zero:
        return [torch.zeros_like(t) if g is None else g.detach() for g, t in zip(grads, tensors)]
    return [None if g is None else g.detach() for g in grads]


class Strategy(ABC):
    """Combine K objective losses into one parameter update, steered by a preference ``w`` (sums to 1)."""

    name: str = ""

    def __init__(self, config, preference: Sequence[float]) -> None:
        self.config = config
        self.preference = torch.as_tensor(preference, dtype=torch.float32).reshape(-1)
        self.epoch = 0

    @abstractmethod
    def step(
        self,
        losses: List[torch.Tensor],
        optimizer: torch.optim.Optimizer,
        parameters: List[torch.Tensor],
        rows: Optional[torch.Tensor] = None,
    ) -> Dict[str, float]:
        """Zero grads, back-propagate ``losses`` (one scalar per objective), combine, and step ``optimizer``.

        ``parameters`` are the trainable tensors; ``rows`` is the per-user representation ``[B, H]`` the losses were
        computed from (strategies that weight per user use it). Returns scalars worth logging.
        """

    def on_epoch_end(self, epoch: int) -> None:
        """Called by the trainer after each epoch (strategies with epoch schedules use it)."""
        self.epoch = epoch + 1

    def _check_losses(self, losses: Sequence[torch.Tensor]) -> None:
        if len(losses) != len(self.preference):
            raise ValueError(f"{type(self).__name__}: got {len(losses)} losses for a preference of "
                             f"{len(self.preference)} objectives")
