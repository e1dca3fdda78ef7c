"""RecBole ``Config`` that knows ``Paragon<Backbone>`` names and layers the plugin's yaml over RecBole's defaults.

Negative sampling follows ``loss_type`` unless set: none for CE, RecBole's uniform default for BPR.

Order, lowest priority first: RecBole's own defaults for the *backbone* (overall, ``<Backbone>.yaml``, dataset,
quick-start), then ``properties/overall.yaml``, ``properties/dataset/<dataset>.yaml`` and (Paragon models only)
``properties/model/<Model>.yaml`` of this plugin, then the user's files, dict and command line. Plain RecBole
models run through the plugin get the same data and training defaults, so baselines are comparable.
"""
from __future__ import annotations

import os
import warnings
from typing import List, Optional, Sequence

from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType

from recbole_paragon import compat
from recbole_paragon.model.paragon import PREFIX
from recbole_paragon.registry import get_model
from recbole_paragon.schema import RENAMED, SCHEMA, SettingWarning, check_settings, close_keys, modernise
from recbole_paragon.settings import OVERALL_YAML, PROPERTIES_DIR

#: Command-line flags of the plugin's programs that are not settings (RecBole's Config reads every --key=value).
COMMAND_LINE_FLAGS = {"model", "dataset", "config_files", "params_file", "num_samples", "max_concurrent", "output",
                      "sweep", "tune", "run_dir", "bundle", "host", "port"}


class Config(RecBoleConfig):
    """RecBole's Config, resolving ``Paragon<Backbone>`` and adding the plugin's yaml files.

    ``command_line``: the ``--key=value`` arguments to read instead of ``sys.argv`` (sweeps and Ray workers, whose
    own ``sys.argv`` holds other programs' flags); ``None`` reads ``sys.argv`` as RecBole does.
    """

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None,
                 command_line: Optional[Sequence[str]] = None) -> None:
        self._command_line = command_line
        #: what the user should hear about their settings (renamed keys, likely typos); also issued as warnings
        self.setting_warnings: List[str] = []
        super().__init__(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
        check_settings(self.final_config_dict)
        self._warn_about_unknown_keys()
        for message in self.setting_warnings:
            warnings.warn(message, SettingWarning, stacklevel=2)

    def _merge_external_config_dict(self):
        """RecBole's merge (command line over dict over files), each source's renamed keys and values first."""
        for source in (self.file_config_dict, self.variable_config_dict, self.cmd_config_dict):
            self.setting_warnings += modernise(source)
        super()._merge_external_config_dict()

    def _warn_about_unknown_keys(self) -> None:
        """RecBole passes settings it does not know through silently (a custom model may read them); a key that
        no yaml, RecBole parameter or plugin setting defines but that closely resembles one is most likely a typo."""
        known = set(self.internal_config_dict) | set(SCHEMA) | set(RENAMED) | COMMAND_LINE_FLAGS
        known |= {key for group in self.parameters.values() for key in group}
        unknown = [key for key in self.external_config_dict if key not in known]
        for key, match in close_keys(unknown, known).items():
            self.setting_warnings.append(f"unknown setting '{key}': did you mean '{match}'? (RecBole passes unknown "
                                         "settings through unchanged, so it has no effect)")

    def _get_final_config_dict(self):
        """RecBole's merge (the user's settings over the defaults), except that a partial ``eval_args`` (e.g. only
        ``{'mode': 'uni100'}``) keeps the defaults' other keys (split ``LS``, order ``TO``) instead of RecBole's
        built-in random split: missing sub-keys take the plugin's defaults, as they take RecBole's in RecBole."""
        final = super()._get_final_config_dict()
        default, given = self.internal_config_dict.get("eval_args"), self.external_config_dict.get("eval_args")
        if isinstance(default, dict) and isinstance(given, dict):
            final["eval_args"] = {**default, **given}
        return final

    def _load_cmd_line(self):
        if self._command_line is None:
            return super()._load_cmd_line()
        with compat.command_line_arguments(self._command_line):
            return super()._load_cmd_line()

    def _set_default_parameters(self):
        self._negative_sampling_follows_loss_type()
        super()._set_default_parameters()

    def _negative_sampling_follows_loss_type(self) -> None:
        """Sequential models: CE trains against every item (no negatives), BPR on RecBole's default uniform
        negatives. A ``train_neg_sample_args`` the user sets (file, dict or command line) is left as given, so CE
        with negative sampling gets RecBole's own error."""
        if "train_neg_sample_args" in self.external_config_dict or hasattr(self.model_class, "input_type"):
            return
        if getattr(self.model_class, "type", None) == ModelType.SEQUENTIAL and \
                self.final_config_dict.get("loss_type") == "CE":
            self.final_config_dict["train_neg_sample_args"] = None

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
        files = [OVERALL_YAML, os.path.join(PROPERTIES_DIR, "dataset", f"{dataset}.yaml")]
        if model.startswith(PREFIX):  # plain RecBole models share the data and training defaults, not the model's
            files.append(os.path.join(PROPERTIES_DIR, "model", f"{model}.yaml"))
        for file in files:
            if os.path.isfile(file):
                loaded = self._update_internal_config_dict(file) or {}
                if "model" in os.path.dirname(file):
                    self.recbole_keys |= set(loaded)
