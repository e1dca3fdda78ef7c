"""Serving: load a run's frozen backbone and generator once, then generate adapters for any preference in ms.

    from recbole_paragon import generate
    model = generate("saved/ParagonSASRec-ml-100k", [0.3, 0.7])     # backbone + generated adapter, eval mode
    scores = model.full_sort_predict(interaction)

Preferences are validated and normalised here, where they enter; the generator gets tensors.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Optional, Sequence, Union

import torch

from recbole_paragon.artifacts import BACKBONE_CHECKPOINT
from recbole_paragon.generators import GeneratedAdapters
from recbole_paragon.preference import as_preference
from recbole_paragon.store import load_backbone, load_generator


class ParagonService:
    """A run directory loaded for serving: frozen backbone + generator; ``model_for(w)`` returns a ready model."""

    def __init__(self, model, adapters: GeneratedAdapters, config=None) -> None:
        self.model = model.eval()
        self.adapters = adapters
        self.config = config

    @classmethod
    def load(cls, run_dir: str) -> "ParagonService":
        from recbole.data import create_dataset, data_preparation

        checkpoint = torch.load(os.path.join(run_dir, BACKBONE_CHECKPOINT), map_location="cpu", weights_only=False)
        config = checkpoint["config"]  # RecBole's own checkpoint: the run's full config
        config["run_dir"] = run_dir
        train_data, _, _ = data_preparation(config, create_dataset(config))
        model = load_backbone(config, train_data._dataset)["model"]
        generator, metadata = load_generator(run_dir, {"backbone_fingerprint": model.backbone_fingerprint()})
        return cls(model, GeneratedAdapters(generator, metadata), config)

    def model_for(self, preference, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                  seed: Optional[int] = None):
        """The backbone with the adapter generated for ``preference`` loaded (eval mode)."""
        vector = self.adapters.vectors(self.preferences(preference), steps, guidance_scale, seed)[0]
        self.model.set_adapter_vector(vector)
        return self.model

    def preferences(self, values) -> torch.Tensor:
        """``[B, K]`` validated, normalised preferences from one preference or a batch of them."""
        if isinstance(values, str) or not _is_batch(values):
            return as_preference(values, self.adapters.objectives)[None]
        return torch.stack([as_preference(value, self.adapters.objectives) for value in values])


@lru_cache(maxsize=4)
def _service(run_dir: str) -> ParagonService:
    return ParagonService.load(run_dir)


def generate(run_dir: str, preference: Union[Sequence[float], str, torch.Tensor], steps: Optional[int] = None,
             guidance_scale: Optional[float] = None, seed: Optional[int] = None):
    """Backbone of ``run_dir`` with an adapter generated for ``preference``, ready for ``full_sort_predict``.

    The run is loaded once per process and cached; each further call only samples (milliseconds).
    """
    return _service(os.path.abspath(run_dir)).model_for(preference, steps, guidance_scale, seed)


def generate_batch(run_dir: str, preferences, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                   seed: Optional[int] = None) -> torch.Tensor:
    """Adapter vectors ``[B, P]`` for many preferences in one sampling pass."""
    service = _service(os.path.abspath(run_dir))
    return service.adapters.vectors(service.preferences(preferences), steps, guidance_scale, seed)


def _is_batch(values) -> bool:
    """Whether ``values`` holds several preferences (a 2-D tensor or a sequence of sequences)."""
    if isinstance(values, torch.Tensor):
        return values.dim() == 2
    return isinstance(values, (list, tuple)) and bool(values) and all(
        isinstance(v, (list, tuple, torch.Tensor, str)) for v in values)
