"""``generate()`` / ``generate_batch()``: adapters for preferences from a run's bundle, loaded once per process.

    from recbole_paragon import generate
    model = generate("saved/ParagonSASRec-ml-100k", [0.3, 0.7])     # an independent model, eval mode
    scores = model.full_sort_predict(interaction)

Each call returns its own model: two preferences served side by side never share an adapter. The run directory
must hold a bundle (written by ``--stage=export``, ``generate`` and ``all``); nothing in it is unpickled.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Optional, Sequence, Union

import torch

from recbole_paragon.serving.recommender import ParagonRecommender


@lru_cache(maxsize=4)
def _recommender(path: str) -> ParagonRecommender:
    return ParagonRecommender.load(path)


def recommender(path: str) -> ParagonRecommender:
    """The process's :class:`ParagonRecommender` for a bundle or run directory (loaded on first use)."""
    return _recommender(os.path.abspath(path))


def generate(run_dir: str, preference: Union[Sequence[float], str, torch.Tensor], steps: Optional[int] = None,
             guidance_scale: Optional[float] = None, seed: Optional[int] = None):
    """An independent ``Paragon<Backbone>`` with the adapter generated for ``preference``, in eval mode.

    Without sampling overrides the adapter comes from the recommender's cache (generated once per preference)."""
    served = recommender(run_dir)
    if steps is None and guidance_scale is None and seed is None:
        return served.adapter(preference)
    return served.model_with(_vectors(served, [preference], steps, guidance_scale, seed)[0])


def generate_batch(run_dir: str, preferences, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                   seed: Optional[int] = None) -> torch.Tensor:
    """Adapter vectors ``[B, P]`` for many preferences in one sampling pass."""
    served = recommender(run_dir)
    if isinstance(preferences, torch.Tensor) and preferences.dim() == 1:
        preferences = [preferences]
    return _vectors(served, preferences, steps, guidance_scale, seed)


def _vectors(served: ParagonRecommender, preferences, steps, guidance_scale, seed) -> torch.Tensor:
    if isinstance(preferences, (str, bytes)) or not _is_batch(preferences):
        preferences = [preferences]
    weights = torch.stack([served.preference(p).tensor for p in preferences])
    with torch.no_grad():
        return served.bundle.adapters.vectors(weights, steps, guidance_scale, seed)


def _is_batch(values) -> bool:
    """Whether ``values`` holds several preferences (a 2-D tensor or a sequence of sequences)."""
    if isinstance(values, torch.Tensor):
        return values.dim() == 2
    return isinstance(values, (list, tuple)) and bool(values) and all(
        isinstance(v, (list, tuple, torch.Tensor, str, dict)) for v in values)
