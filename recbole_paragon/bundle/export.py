"""Export a run as a serving bundle: everything a service needs, nothing it would have to unpickle.

The bundle is built in a temporary directory next to its place and swapped in at the end, so a crash never leaves
half a bundle. It is reused when what it was exported from (backbone, generator, data, export settings) is unchanged.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from logging import getLogger
from typing import Any, Dict, List, Optional

from recbole_paragon.artifacts import ArtifactError, fingerprint, run_directory, save_tensors, to_jsonable, write_json
from recbole_paragon.bundle.catalogue import catalogue_payload, user_histories
from recbole_paragon.bundle.files import (BACKBONE, BUNDLE_DIR, CATALOGUE, GENERATOR_METADATA, GENERATOR_TENSORS,
                                          GRID, INDEX, MANIFEST, MODEL, TENSORS, read_manifest, write_manifest)
from recbole_paragon.bundle.index import ItemIndex, wants_index
from recbole_paragon.bundle.standin import dataset_facts, encode_config, item_feature_tensors
from recbole_paragon.model.adapter import Adapter
from recbole_paragon.preference import simplex_grid
from recbole_paragon.settings import setting

SETTINGS = ("export_grid_step", "title_field", "category_field", "serve_index_min_items", "serve_index_connectivity",
            "serve_index_build_expansion")


def source_fingerprint(config, model, adapters, dataset) -> str:
    """What a bundle is exported from: the backbone, the generator, the data and the export settings."""
    return fingerprint({"backbone": model.backbone_fingerprint(),
                        "generator": adapters.metadata.get("settings_fingerprint"),
                        "sampling": adapters.sampling, "dataset": dataset.dataset_name,
                        "interactions": len(dataset.inter_feat),
                        "settings": {key: setting(config, key) for key in SETTINGS}})


def objective_info(trainer) -> List[Dict[str, Any]]:
    """Each objective's name and the validation metric that measures it."""
    return [{"name": o.name, "metric": o.metric(), "bigger_is_better": bool(o.bigger_is_better)}
            for o in trainer.objectives]


def grid_metrics(config, trainer, adapters) -> List[Dict[str, Any]]:
    """Validation metrics of the adapters generated for the ``export_grid_step`` preference grid."""
    grid = simplex_grid(len(adapters.objectives), float(setting(config, "export_grid_step")))
    vectors = adapters.vectors(grid)
    return [{"preference": [round(w, 6) for w in preference.tolist()],
             "metrics": to_jsonable(trainer.evaluate_vector(vector, "valid"))}
            for preference, vector in zip(grid, vectors)]


def export_bundle(config, dataset, trainer, adapters, directory: Optional[str] = None) -> str:
    """Write (or reuse) the bundle of a run: ``<run_dir>/bundle`` unless ``directory`` is given."""
    model = trainer.model
    directory = directory or os.path.join(run_directory(config), BUNDLE_DIR)
    source = source_fingerprint(config, model, adapters, dataset)
    manifest_path = os.path.join(directory, MANIFEST)
    if _exported_from(manifest_path) == source:
        getLogger().info(f"reusing bundle: {directory}")
        return directory
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.")
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would keep the service's user out of a copied bundle
    try:
        _write_files(staging, config, dataset, trainer, adapters)
        write_manifest(staging, {"source_fingerprint": source, "model": config["model"],
                                 "dataset": config["dataset"], "backbone_fingerprint": model.backbone_fingerprint(),
                                 "generator": adapters.metadata["kind"], "objectives": list(adapters.objectives),
                                 "users": dataset.user_num - 1, "items": dataset.item_num - 1})
        _swap(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    getLogger().info(f"bundle written: {directory}")
    return directory


def _write_files(directory: str, config, dataset, trainer, adapters) -> None:
    model = trainer.model
    identity = Adapter(model.adapter.hidden_size, model.adapter.adapter_dim).state_dict()  # the served model's own
    state = {**{name: tensor.detach().cpu().clone() for name, tensor in model.backbone_state_dict().items()},
             **{f"adapter.{name}": tensor for name, tensor in identity.items()}}
    save_tensors(os.path.join(directory, BACKBONE), {"state_dict": state})
    write_json(os.path.join(directory, MODEL), {"model": config["model"], "config": encode_config(config),
                                                "dataset": dataset_facts(dataset),
                                                "backbone_fingerprint": model.backbone_fingerprint()})
    items, offsets = user_histories(dataset)
    save_tensors(os.path.join(directory, TENSORS), {"item_features": item_feature_tensors(dataset),
                                                    "history_items": items, "history_offsets": offsets})
    write_json(os.path.join(directory, CATALOGUE), catalogue_payload(config, dataset))
    save_tensors(os.path.join(directory, GENERATOR_TENSORS), adapters.generator.state_dict_plain())
    write_json(os.path.join(directory, GENERATOR_METADATA), to_jsonable(adapters.metadata))
    write_json(os.path.join(directory, GRID), {"objectives": objective_info(trainer),
                                               "grid": grid_metrics(config, trainer, adapters)})
    table = model.index_table() if wants_index(config, model.n_items) else None
    if table is not None:
        ItemIndex.build(table, config).save(os.path.join(directory, INDEX))


def _swap(staging: str, directory: str) -> None:
    """Put ``staging`` at ``directory``, replacing an older bundle there."""
    old = None
    if os.path.exists(directory):
        old = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(directory)), prefix=".old-bundle.")
        os.rmdir(old)
        os.replace(directory, old)
    os.replace(staging, directory)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _exported_from(manifest_path: str) -> Optional[str]:
    """The source fingerprint of an existing bundle (``None``: none there, or one that does not check out: a file
    changed, or not signed with the ``PARAGON_BUNDLE_KEY`` now set)."""
    if not os.path.isfile(manifest_path):
        return None
    try:
        manifest = read_manifest(os.path.dirname(manifest_path))
    except ArtifactError:
        return None
    return manifest.get("source_fingerprint")
