"""Bundles for the serving benchmark: a quickly trained ml-100k bundle, and a synthetic large catalogue made from it.

    python benchmarks/serving_bundles.py --ml100k DIR            # train (tiny budget) and export ml-100k
    python benchmarks/serving_bundles.py --large DIR --from DIR  # inflate a bundle to --items items (d = its hidden)

The ml-100k bundle has the demo's architecture (SASRec 1 layer, hidden 64; DiT generator with the default size and
sampling steps) trained on a tiny budget: its serving cost is the demo's, its quality is not the point. The large
bundle keeps that model and generator and replaces the item table: the 1 682 real items first, then synthetic
items from :func:`ann_libraries.clustered_table` scaled to the real table's spread, with extra synthetic users
(random histories over the whole catalogue). Its item index is built as export builds one (``bundle/index.py``) and
the manifest rewritten (signed when ``PARAGON_BUNDLE_KEY`` is set).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import Any, Dict

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ann_libraries import clustered_table  # noqa: E402
from recbole_paragon.artifacts import load_tensors, read_json, save_tensors, write_json  # noqa: E402
from recbole_paragon.bundle import files  # noqa: E402
from recbole_paragon.bundle.index import ItemIndex  # noqa: E402
from recbole_paragon.bundle.standin import StandInDataset, decode_config  # noqa: E402
from recbole_paragon.registry import get_model  # noqa: E402
from recbole_paragon.store import load_plain_state  # noqa: E402

#: A tiny training budget with the demo's architecture (properties/model/ParagonSASRec.yaml, DiT defaults).
ML100K_BUDGET = {"epochs": 2, "bank_grid_step": 0.5, "bank_checkpoints": [20], "adapter_steps": 30,
                 "generator_steps": 200, "generator_eval_interval": 200, "generator_validation_fraction": 0.0,
                 "finetune_steps": 0, "export_grid_step": 0.5, "evaluation_holdout": False, "state": "WARNING",
                 "show_progress": False, "log_wandb": False}


def ml100k_bundle(run_dir: str) -> str:
    """Train and export an ml-100k run at ``run_dir`` (reused when its bundle is there); its bundle directory."""
    import recbole

    from recbole_paragon import run_recbole_paragon

    if not os.path.isfile(os.path.join(run_dir, files.BUNDLE_DIR, files.MANIFEST)):
        data = os.path.join(os.path.dirname(recbole.__file__), "dataset_example")
        run_recbole_paragon("ParagonSASRec", "ml-100k", config_dict={
            **ML100K_BUDGET, "data_path": data, "run_dir": run_dir, "checkpoint_dir": os.path.dirname(run_dir),
            "stage": "export"})
    return os.path.join(run_dir, files.BUNDLE_DIR)


def large_bundle(source: str, target: str, items: int, users: int, seed: int = 0) -> Dict[str, Any]:
    """Write a bundle of ``items`` items and ``users`` extra users at ``target`` from the bundle ``source``;
    returns the index build time and the index file size."""
    rng = np.random.default_rng(seed)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    described = read_json(os.path.join(target, files.MODEL), "")
    state = load_tensors(os.path.join(target, files.BACKBONE), "")
    real = state["state_dict"]["item_embedding.weight"]
    synthetic = torch.from_numpy(clustered_table(items - (len(real) - 1), real.shape[1], seed))
    synthetic = synthetic / synthetic.std() * real[1:].std()
    state["state_dict"]["item_embedding.weight"] = torch.cat([real, synthetic])
    save_tensors(os.path.join(target, files.BACKBONE), state)
    total = items + 1
    catalogue = read_json(os.path.join(target, files.CATALOGUE), "")
    new_users = [f"synthetic-user-{i}" for i in range(users)]
    catalogue["item_tokens"] += [f"synthetic-{i}" for i in range(total - len(real))]
    catalogue["categories"] += [[] for _ in range(total - len(real))]
    title = catalogue.get("title_field")
    catalogue["fields"] = {title: catalogue["fields"][title] + [None] * (total - len(real))} if title else {}
    catalogue["user_tokens"] += new_users
    write_json(os.path.join(target, files.CATALOGUE), catalogue)
    tensors = load_tensors(os.path.join(target, files.TENSORS), "")
    lengths = rng.integers(5, 50, users)
    histories = torch.from_numpy(rng.integers(1, total, int(lengths.sum())))
    tensors["history_items"] = torch.cat([tensors["history_items"], histories])
    tensors["history_offsets"] = torch.cat([tensors["history_offsets"],
                                            tensors["history_offsets"][-1] + torch.from_numpy(lengths.cumsum())])
    tensors["item_features"] = {name: torch.cat([value, torch.zeros((total - len(value), *value.shape[1:]),
                                                                    dtype=value.dtype)])
                                for name, value in tensors["item_features"].items()}
    save_tensors(os.path.join(target, files.TENSORS), tensors)
    facts = described["dataset"]
    facts["num"][facts["iid_field"]] = total
    facts["num"][facts["uid_field"]] += users
    config = decode_config(described["config"], files.MODEL)
    model = get_model(described["model"])(config, StandInDataset(facts, tensors["item_features"], config))
    load_plain_state(model, state, files.BACKBONE, "")
    fingerprint = model.backbone_fingerprint()
    write_json(os.path.join(target, files.MODEL), {**described, "dataset": facts, "backbone_fingerprint": fingerprint})
    generator = read_json(os.path.join(target, files.GENERATOR_METADATA), "")
    write_json(os.path.join(target, files.GENERATOR_METADATA), {**generator, "backbone_fingerprint": fingerprint})
    start = time.perf_counter()
    ItemIndex.build(model.index_table(), config).save(os.path.join(target, files.INDEX))
    built = {"index_build_s": time.perf_counter() - start,
             "index_file_mib": os.path.getsize(os.path.join(target, files.INDEX)) / 2 ** 20}
    manifest = read_json(os.path.join(target, files.MANIFEST), "")
    payload = {k: v for k, v in manifest.items() if k not in ("files", "format_version")}
    files.write_manifest(target, {**payload, "backbone_fingerprint": fingerprint, "items": items,
                                  "users": payload["users"] + users, "source_fingerprint": f"synthetic-{items}"})
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml100k", help="run directory of the ml-100k bundle (trained when missing)")
    parser.add_argument("--large", help="where to write the large bundle")
    parser.add_argument("--source", help="the bundle the large one is made from")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    if args.ml100k:
        print(ml100k_bundle(os.path.abspath(args.ml100k)))
    if args.large:
        print(large_bundle(args.source, args.large, args.items, args.users))


if __name__ == "__main__":
    main()
