"""Serving: load a run's frozen backbone and generator once, then generate adapters for any preference in ms.

    from recbole_paragon import generate
    model = generate("saved/ParagonSASRec-ml-100k", [0.3, 0.7])     # backbone + generated adapter, eval mode
    scores = model.full_sort_predict(interaction)

The generator is stored as ``generator.pt`` (plain tensors, ``torch.load(weights_only=True)``) and
``generator.json`` (kind, objectives, fingerprints of the backbone and the bank, sampling defaults, training history).
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from typing import Any, Dict, Optional, Sequence, Union

import torch

from recbole_paragon.io import atomic_path, write_json
from recbole_paragon.model.generator import DiffusionGenerator, HyperNetwork
from recbole_paragon.preference import normalize_preference

GENERATOR_FILE = "generator-{kind}.pt"
GENERATOR_METADATA = "generator-{kind}.json"
KINDS = ("diffusion", "hypernet")


def generator_paths(directory: str, kind: str):
    if kind not in KINDS:
        raise ValueError(f"unknown generator {kind!r}; choose one of {', '.join(KINDS)}")
    return (os.path.join(directory, GENERATOR_FILE.format(kind=kind)),
            os.path.join(directory, GENERATOR_METADATA.format(kind=kind)))


def settings_fingerprint(settings: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def save_generator(directory: str, generator, metadata: Dict[str, Any]) -> None:
    """Write the generator's tensors then its metadata, each atomically."""
    tensors, json_path = generator_paths(directory, metadata["kind"])
    with atomic_path(tensors) as temporary:
        torch.save(generator.state_dict_plain(), temporary)
    write_json(json_path, metadata)


def generator_exists(directory: str, kind: str) -> bool:
    return all(os.path.isfile(path) for path in generator_paths(directory, kind))


def load_generator(directory: str, expected: Optional[Dict[str, Any]] = None, kind: Optional[str] = None):
    """The stored generator (``kind``, default: diffusion if present, else hypernet) and its metadata;
    ``expected`` entries (fingerprints, objectives…) must match."""
    kind = kind or next((k for k in KINDS if generator_exists(directory, k)), KINDS[0])
    if not generator_exists(directory, kind):
        raise FileNotFoundError(f"no {kind} generator in {directory}: run --stage=generator first")
    tensors, json_path = generator_paths(directory, kind)
    with open(json_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    mismatched = {k: (metadata.get(k), v) for k, v in (expected or {}).items() if metadata.get(k) != v}
    if mismatched:
        details = "; ".join(f"{k}: generator has {a!r}, expected {b!r}" for k, (a, b) in mismatched.items())
        raise ValueError(f"generator in {directory} was trained for something else ({details}); retrain it")
    state = torch.load(tensors, map_location="cpu", weights_only=True)
    generator = DiffusionGenerator.from_state(state) if state["kind"] == "diffusion" else HyperNetwork.from_state(state)
    return generator, metadata


class GeneratedAdapters:
    """A generator with what it needs to turn preferences into adapter vectors."""

    def __init__(self, generator, metadata: Dict[str, Any]) -> None:
        self.generator = generator
        self.metadata = metadata
        self.objectives = list(metadata["objectives"])
        self.sampling = dict(metadata["sampling"])

    def vectors(self, preferences, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                seed: Optional[int] = None) -> torch.Tensor:
        """Adapter vectors ``[B, P]`` for preferences ``[B, K]`` in one sampling pass (validated, normalised)."""
        preferences = torch.as_tensor(preferences, dtype=torch.float32)
        if preferences.dim() == 1:
            preferences = preferences[None]
        weights = torch.stack([normalize_preference(p, self.objectives) for p in preferences])
        if isinstance(self.generator, HyperNetwork):
            with torch.no_grad():
                return self.generator(weights)
        condition = weights
        if self.metadata.get("condition_on_step"):
            condition = torch.cat([weights, torch.ones(len(weights), 1)], dim=1)
        return self.generator.generate(
            condition,
            steps=int(self.sampling["steps"] if steps is None else steps),
            sampler=self.sampling["sampler"],
            guidance_scale=float(self.sampling["guidance_scale"] if guidance_scale is None else guidance_scale),
            seed=self.sampling["seed"] if seed is None else seed,
            num_threads=self.sampling.get("num_threads"),
        )


class ParagonService:
    """A run directory loaded for serving: frozen backbone + generator; ``model_for(w)`` returns a ready model."""

    def __init__(self, model, adapters: GeneratedAdapters, config=None) -> None:
        self.model = model.eval()
        self.adapters = adapters
        self.config = config

    @classmethod
    def load(cls, run_dir: str) -> "ParagonService":
        from recbole.data import create_dataset, data_preparation

        from recbole_paragon.pipeline import load_backbone

        checkpoint = torch.load(os.path.join(run_dir, "backbone.pth"), map_location="cpu", weights_only=False)
        config = checkpoint["config"]  # RecBole's own checkpoint: the run's full config
        config["run_dir"] = run_dir
        train_data, _, _ = data_preparation(config, create_dataset(config))
        model = load_backbone(config, train_data._dataset)["model"]
        generator, metadata = load_generator(run_dir, {"backbone_fingerprint": model.backbone_fingerprint()})
        return cls(model, GeneratedAdapters(generator, metadata), config)

    def model_for(self, preference, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
                  seed: Optional[int] = None):
        """The backbone with the adapter generated for ``preference`` loaded (eval mode)."""
        vector = self.adapters.vectors(preference, steps, guidance_scale, seed)[0]
        self.model.set_adapter_vector(vector)
        return self.model


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
    return _service(os.path.abspath(run_dir)).adapters.vectors(preferences, steps, guidance_scale, seed)
