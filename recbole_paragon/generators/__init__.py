"""Parameter generators: preference -> adapter vector. A diffusion transformer (Paragon), a hypernetwork, the
preference-conditioned adapter and the barycentric soup of the bank.

Pure torch, no RecBole: the training loops live in :mod:`recbole_paragon.training.generator_trainer`.
"""
from __future__ import annotations

from typing import Any, Dict

from recbole_paragon.generators.barycentric import BarycentricSoup
from recbole_paragon.generators.conditioned import ConditionedAdapter
from recbole_paragon.generators.diffusion import GaussianDiffusion
from recbole_paragon.generators.diffusion_generator import DiffusionGenerator
from recbole_paragon.generators.dit import DiT
from recbole_paragon.generators.ema import EMA
from recbole_paragon.generators.generated import GeneratedAdapters
from recbole_paragon.generators.hypernet import HyperNetwork
from recbole_paragon.generators.tokens import AdapterTokenizer, Normalizer

#: Generator kinds by the name ``generator:`` takes in yaml. Each class names its ``kind``, how it is trained
#: (``training``: from the bank, on the objectives through ``for_adapter``, or a lookup built from the bank's adapters) and its ``settings_prefixes``; its
#: evaluation method, training and fingerprint follow from this table.
GENERATORS: Dict[str, type] = {cls.kind: cls for cls in (DiffusionGenerator, HyperNetwork, ConditionedAdapter,
                                                           BarycentricSoup)}
_STATE_KINDS = {**GENERATORS, "hypernetwork": HyperNetwork}  # "hypernetwork": files saved before 0.2


def check_generator_kind(kind: str) -> str:
    if kind not in GENERATORS:
        raise ValueError(f"unknown generator {kind!r}; choose one of {', '.join(GENERATORS)}")
    return kind


def generator_from_state(state: Dict[str, Any]):
    """Rebuild a generator from its plain state (``state_dict_plain``)."""
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in _STATE_KINDS:
        raise ValueError(f"not a generator state (kind={kind!r})")
    return _STATE_KINDS[kind].from_state(state)


__all__ = ["AdapterTokenizer", "BarycentricSoup", "ConditionedAdapter", "DiT", "DiffusionGenerator", "EMA", "GENERATORS", "GaussianDiffusion",
           "GeneratedAdapters", "HyperNetwork", "Normalizer", "check_generator_kind", "generator_from_state"]
