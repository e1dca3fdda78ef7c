"""RecBole datasets, loaded once per process for a given data setup.

Loading and filtering the atomic files is the slow part of a short run; runs that differ only in model or training
settings (a sweep's trials, a model test's cases, an ``objective_function`` called by RecBole's ``HyperTuning``)
share it. The key is what RecBole itself compares before reusing a saved dataset (its ``dataset_arguments``, the
seed, the model type); each caller gets its own deep copy, bound to its own config.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

from recbole.data import create_dataset
from recbole.utils.argument_list import dataset_arguments

from recbole_paragon.artifacts import fingerprint

_LOADED: "OrderedDict[str, Any]" = OrderedDict()
_KEPT = 2  # data setups kept in memory at once


def dataset_key(config) -> str:
    """Fingerprint of every setting the loaded dataset depends on."""
    keys = list(dataset_arguments) + ["seed", "repeatable", "dataset", "data_path", "MODEL_TYPE"]
    return fingerprint({key: config[key] for key in keys})


def load_dataset(config):
    """RecBole's ``create_dataset(config)``, from memory when this process already loaded the same data setup."""
    key = dataset_key(config)
    if key not in _LOADED:
        _LOADED[key] = create_dataset(config)
        while len(_LOADED) > _KEPT:
            _LOADED.popitem(last=False)
    _LOADED.move_to_end(key)
    dataset = copy.deepcopy(_LOADED[key])
    dataset.config = config  # splitting and ordering read the caller's eval_args
    return dataset
