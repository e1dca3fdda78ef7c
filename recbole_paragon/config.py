"""RecBole ``Config`` that knows ``Paragon<Backbone>`` names and layers the plugin's yaml over RecBole's defaults.

Order, lowest priority first: RecBole's own defaults for the *backbone* (overall, ``<Backbone>.yaml``, dataset,
quick-start), then ``properties/overall.yaml``, ``properties/dataset/<dataset>.yaml`` and (Paragon models only)
``properties/model/<Model>.yaml`` of this plugin, then the user's files, dict and command line. Plain RecBole
models run through the plugin get the same data and training defaults, so baselines are comparable.
"""
from __future__ import annotations

import os

from recbole.config import Config as RecBoleConfig

from recbole_paragon import compat  # noqa: F401  (workarounds before RecBole runs)
from recbole_paragon.model.paragon import PREFIX
from recbole_paragon.utils import get_model

PROPERTIES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "properties")
if not os.path.isdir(PROPERTIES_DIR):  # installed non-editable: properties/ ships inside the package
    PROPERTIES_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "properties")


class Config(RecBoleConfig):
    """RecBole's Config, resolving ``Paragon<Backbone>`` and adding the plugin's yaml files."""

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model_class = get_model(model)
            if dataset is None and "dataset" not in self.external_config_dict:
                raise KeyError("dataset must be given as an argument, in a config file, a config dict or --dataset=")
            return model, model_class, dataset if dataset is not None else self.external_config_dict["dataset"]
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        backbone = model[len(PREFIX):] if model.startswith(PREFIX) else model
        super()._load_internal_config_dict(backbone, model_class, dataset)
        #: keys RecBole itself knows for this backbone and dataset: the ones a trained backbone depends on
        self.recbole_keys = set(self.internal_config_dict)
        files = [os.path.join(PROPERTIES_DIR, "overall.yaml"), os.path.join(PROPERTIES_DIR, "dataset", f"{dataset}.yaml")]
        if model.startswith(PREFIX):  # plain RecBole models share the data and training defaults, not the model's
            files.append(os.path.join(PROPERTIES_DIR, "model", f"{model}.yaml"))
        for file in files:
            if os.path.isfile(file):
                loaded = self._update_internal_config_dict(file) or {}
                if "model" in os.path.dirname(file):
                    self.recbole_keys |= set(loaded)
