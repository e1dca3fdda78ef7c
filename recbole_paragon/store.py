"""What a run directory stores, read back: the trained backbone and the generators.

``backbone.pth`` is RecBole's own checkpoint (written by the backbone stage, it pickles RecBole's ``Config``, so
the plugin never loads it: a crafted pickle would run code); ``backbone-state.pt`` holds the same weights as plain
tensors and is what :func:`load_backbone` reads (``weights_only=True``); ``backbone.json`` holds the fingerprints
that tie them to their settings. A generator is ``generator-<kind>.pt`` (plain tensors) plus
``generator-<kind>.json`` (kind, objectives, fingerprints, sampling defaults, training history).
"""
from __future__ import annotations

import os
from logging import getLogger
from typing import Any, Dict, Optional, Tuple

import torch

from recbole_paragon.artifacts import (BACKBONE_METADATA, BACKBONE_STATE, GENERATOR_METADATA,
                                       GENERATOR_TENSORS, ArtifactError, fingerprint, load_tensors, read_json,
                                       run_directory, save_tensors, write_json)
from recbole_paragon.generators import GENERATORS, check_generator_kind, generator_from_state
from recbole_paragon.model.auxiliary import configured_auxiliary
from recbole_paragon.registry import get_model
from recbole_paragon.settings import setting

#: RecBole keys that do not change what the backbone learns (where it is saved, how it is logged or evaluated).
_NOT_BACKBONE_KEYS = {"checkpoint_dir", "show_progress", "state", "metrics", "topk", "valid_metric",
                      "valid_metric_bigger", "eval_batch_size", "log_wandb", "wandb_project", "gpu_id", "use_gpu",
                      "device", "worker", "data_path", "save_dataset", "save_dataloaders", "dataset_save_path",
                      "dataloaders_save_path", "nproc", "world_size", "offset", "ip", "port", "local_rank",
                      "single_spec", "shuffle", "metric_decimal_place", "log_root", "train_adapter_with_backbone"}


# -- backbone ------------------------------------------------------------------------------------------------------
def multitask_settings(config) -> Dict[str, Any]:
    """The plugin keys multi-task backbone training depends on (none without auxiliary tasks)."""
    if not configured_auxiliary(config):
        return {}
    strategy = str(setting(config, "backbone_strategy"))
    return {key: value for key, value in config.final_config_dict.items()
            if key.startswith(("backbone_auxiliary", "backbone_strategy", f"{strategy}_"))}


def backbone_config_fingerprint(config) -> str:
    """Hash of every config value the backbone depends on: RecBole's own keys for the backbone and dataset."""
    known = getattr(config, "recbole_keys", None) or set(config.final_config_dict)
    relevant = {key: value for key, value in sorted(config.final_config_dict.items())
                if key in known and key not in _NOT_BACKBONE_KEYS}
    relevant.update(multitask_settings(config))
    return fingerprint(relevant)


def write_backbone_metadata(config, model, result: Dict[str, Any]) -> None:
    """``backbone-state.pt`` (the weights as plain tensors), then ``backbone.json``: the fingerprints of the
    settings and weights, and the training results."""
    directory = run_directory(config)
    save_tensors(os.path.join(directory, BACKBONE_STATE), {"state_dict": _plain_state(model)})
    metadata = {k: v for k, v in result.items() if k not in ("model", "trainer", "checkpoint")}
    write_json(os.path.join(directory, BACKBONE_METADATA),
               {"config_fingerprint": backbone_config_fingerprint(config),
                "backbone_fingerprint": model.backbone_fingerprint(), **metadata})


def _plain_state(model) -> Dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


def saved_backbone_matches(config) -> bool:
    """Whether the run directory holds a backbone trained with the current settings, as plain tensors."""
    directory = run_directory(config)
    metadata_path = os.path.join(directory, BACKBONE_METADATA)
    if not os.path.isfile(metadata_path):
        return False
    if not os.path.isfile(os.path.join(directory, BACKBONE_STATE)):
        getLogger().warning(f"{directory} has no {BACKBONE_STATE} (a run of an older version): its pickled "
                            f"RecBole checkpoint is never loaded, so the backbone is trained again")
        return False
    metadata = read_json(metadata_path, f"delete {directory} (or its backbone files) to train the backbone again")
    return metadata.get("config_fingerprint") == backbone_config_fingerprint(config)


def load_backbone(config, dataset) -> Dict[str, Any]:
    """The saved backbone of the run directory (``backbone-state.pt``, plain tensors) in a fresh
    ``Paragon<Backbone>``; RecBole's pickled ``backbone.pth`` is never read."""
    directory = run_directory(config)
    fix = f"delete {directory}/{BACKBONE_STATE} and {BACKBONE_METADATA} to train the backbone again"
    metadata = read_json(os.path.join(directory, BACKBONE_METADATA), fix)
    path = os.path.join(directory, BACKBONE_STATE)
    model = get_model(config["model"])(config, dataset)
    load_plain_state(model, load_tensors(path, fix), path, fix)
    model = model.to(config["device"])
    if model.backbone_fingerprint() != metadata["backbone_fingerprint"]:
        raise ArtifactError(f"{path} does not match its metadata; {fix}")
    return {**metadata, "model": model, "checkpoint": path, "reused": True}


def load_plain_state(model, state: Any, path: str, fix: str) -> None:
    """Load ``{"state_dict": {name: tensor}}`` into ``model``; anything else raises :class:`ArtifactError`."""
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ArtifactError(f"{path} holds no plain state_dict of tensors; {fix}")
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ArtifactError(f"{path} does not fit a {type(model).__name__} of these settings ({first_line}); "
                            f"{fix}") from None


# -- generators ----------------------------------------------------------------------------------------------------
def generator_paths(directory: str, kind: str) -> Tuple[str, str]:
    """``(tensors, metadata)`` paths of the ``kind`` generator in ``directory``."""
    check_generator_kind(kind)
    return (os.path.join(directory, GENERATOR_TENSORS.format(kind=kind)),
            os.path.join(directory, GENERATOR_METADATA.format(kind=kind)))


def save_generator(directory: str, generator, metadata: Dict[str, Any]) -> None:
    """Write the generator's tensors then its metadata, each atomically."""
    tensors, json_path = generator_paths(directory, metadata["kind"])
    save_tensors(tensors, generator.state_dict_plain())
    write_json(json_path, metadata)


def generator_exists(directory: str, kind: str) -> bool:
    return all(os.path.isfile(path) for path in generator_paths(directory, kind))


def load_generator(directory: str, expected: Optional[Dict[str, Any]] = None, kind: Optional[str] = None):
    """The stored generator (``kind``, default: diffusion if present, else hypernet) and its metadata;
    ``expected`` entries (fingerprints, objectives…) must match."""
    kind = kind or next((k for k in GENERATORS if generator_exists(directory, k)), next(iter(GENERATORS)))
    if not generator_exists(directory, kind):
        raise FileNotFoundError(f"no {kind} generator in {directory}: run --stage=generator first")
    tensors, json_path = generator_paths(directory, kind)
    fix = f"delete {tensors} and {json_path} and run --stage=generator again"
    metadata = read_json(json_path, fix)
    mismatched = {k: (metadata.get(k), v) for k, v in (expected or {}).items() if metadata.get(k) != v}
    if mismatched:
        details = "; ".join(f"{k}: generator has {a!r}, expected {b!r}" for k, (a, b) in mismatched.items())
        raise ValueError(f"generator in {directory} was trained for something else ({details}); retrain it")
    try:
        generator = generator_from_state(load_tensors(tensors, fix))
    except (KeyError, TypeError, RuntimeError) as error:
        raise ArtifactError(f"{tensors} is not a generator this version can read ({error}); {fix}") from None
    return generator, metadata
