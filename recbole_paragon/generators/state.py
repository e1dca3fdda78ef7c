"""Generators save as plain tensors, numbers and strings: ``torch.load(weights_only=True)`` loads them."""
from __future__ import annotations

from typing import Dict

import torch

STATE_FORMAT = "recbole_paragon.generator/1"


def plain(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Detached CPU copies of a state dict's tensors."""
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class PlainStateFile:
    """``save``/``load`` through ``state_dict_plain``/``from_state``: plain tensors, ``weights_only=True`` loads."""

    def save(self, path: str) -> None:
        torch.save(self.state_dict_plain(), path)

    @classmethod
    def load(cls, path: str, map_location="cpu"):
        return cls.from_state(torch.load(path, map_location=map_location, weights_only=True))

