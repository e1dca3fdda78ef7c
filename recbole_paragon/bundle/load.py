"""Load a serving bundle: manifest checked first, then only JSON and ``torch.load(weights_only=True)``.

The model is rebuilt from the bundle's JSON config and a stand-in dataset (the raw data is not needed), its weights
loaded from plain tensors, and every part checked against the manifest's fingerprints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from recbole_paragon.artifacts import ArtifactError, load_tensors, read_json
from recbole_paragon.bundle.catalogue import Catalogue
from recbole_paragon.bundle.files import (BACKBONE, CATALOGUE, EXPORT_FIX, GENERATOR_METADATA, GENERATOR_TENSORS,
                                          GRID, INDEX, MODEL, TENSORS, bundle_directory, read_manifest)
from recbole_paragon.bundle.index import ItemIndex, item_index
from recbole_paragon.bundle.standin import StandInDataset, decode_config
from recbole_paragon.generators import GeneratedAdapters, generator_from_state
from recbole_paragon.registry import get_model
from recbole_paragon.store import load_plain_state

SERVE_PREFIX = "serve_"


@dataclass
class Bundle:
    """A loaded bundle: the frozen model, its generator, the catalogue and the validation grid."""

    directory: str
    manifest: Dict[str, Any]
    config: Any
    model: Any
    adapters: GeneratedAdapters
    catalogue: Catalogue
    objectives: List[Dict[str, Any]]
    grid: List[Dict[str, Any]]
    index: Optional[ItemIndex] = None  # the ANN item index of a large catalogue (bundle/index.py)


def load_bundle(path: str, settings: Optional[Dict[str, Any]] = None) -> Bundle:
    """The bundle at ``path`` (a bundle directory, or a run directory holding ``bundle/``). Its ``serve_*``
    settings are those of where it is served: ``settings``, else ``properties/overall.yaml`` (not the values of the
    run it was exported from)."""
    directory = bundle_directory(path)
    manifest = read_manifest(directory)
    described = read_json(os.path.join(directory, MODEL), EXPORT_FIX)
    config = decode_config(described["config"], os.path.join(directory, MODEL))
    config.final_config_dict = {key: value for key, value in config.final_config_dict.items()
                                if not key.startswith(SERVE_PREFIX)}  # serving is set where it runs, not at export
    for key, value in (settings or {}).items():
        config[key] = value
    tensors = load_tensors(os.path.join(directory, TENSORS), EXPORT_FIX)
    model = _model(directory, described, config, tensors, manifest)
    adapters = _adapters(directory, manifest)
    catalogue = Catalogue(read_json(os.path.join(directory, CATALOGUE), EXPORT_FIX), tensors["history_items"],
                          tensors["history_offsets"])
    grid = read_json(os.path.join(directory, GRID), EXPORT_FIX)
    index = item_index(config, model, directory, INDEX, INDEX in manifest["files"], EXPORT_FIX)
    return Bundle(directory, manifest, config, model, adapters, catalogue, grid["objectives"], grid["grid"], index)


def _model(directory: str, described: Dict[str, Any], config, tensors: Dict[str, Any], manifest: Dict[str, Any]):
    dataset = StandInDataset(described["dataset"], tensors.get("item_features") or {}, config)
    model = get_model(described["model"])(config, dataset)
    path = os.path.join(directory, BACKBONE)
    load_plain_state(model, load_tensors(path, EXPORT_FIX), path, EXPORT_FIX)
    if model.backbone_fingerprint() != manifest["backbone_fingerprint"]:
        raise ArtifactError(f"{path} is not the backbone the bundle's manifest names; {EXPORT_FIX}")
    model.eval()
    model.requires_grad_(False)
    return model


def _adapters(directory: str, manifest: Dict[str, Any]) -> GeneratedAdapters:
    metadata = read_json(os.path.join(directory, GENERATOR_METADATA), EXPORT_FIX)
    if metadata.get("backbone_fingerprint") != manifest["backbone_fingerprint"]:
        raise ArtifactError(f"{directory}/{GENERATOR_METADATA} belongs to another backbone; {EXPORT_FIX}")
    path = os.path.join(directory, GENERATOR_TENSORS)
    try:
        generator = generator_from_state(load_tensors(path, EXPORT_FIX))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ArtifactError(f"{path} is not a generator this version can read ({error}); {EXPORT_FIX}") from None
    return GeneratedAdapters(generator, metadata)


