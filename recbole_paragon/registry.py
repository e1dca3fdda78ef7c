"""Model and trainer lookup: the plugin first, RecBole as fallback (as RecBole-GNN does)."""
from __future__ import annotations

import difflib
import importlib

from recbole.utils import ModelType
from recbole.utils import get_model as recbole_get_model
from recbole.utils import get_trainer as recbole_get_trainer

from recbole_paragon.model.paragon import PREFIX, make_paragon_class, supported_model_names


def get_model(model_name: str) -> type:
    """Model class for ``model_name``: ``Paragon<Backbone>`` built on demand, anything else from RecBole."""
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model name must be a non-empty string, got {model_name!r}")
    if model_name.startswith(PREFIX) and len(model_name) > len(PREFIX):
        backbone_name = model_name[len(PREFIX):]
        try:
            backbone = recbole_get_model(backbone_name)
        except (ValueError, AttributeError, ModuleNotFoundError):
            raise ValueError(_unknown_model_message(model_name)) from None
        return make_paragon_class(backbone)
    try:
        return recbole_get_model(model_name)
    except (ValueError, AttributeError, ModuleNotFoundError):
        raise ValueError(_unknown_model_message(model_name)) from None


def _unknown_model_message(model_name: str) -> str:
    names = supported_model_names()
    close = difflib.get_close_matches(model_name, names, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    return (
        f"unknown model '{model_name}'.{hint} Paragon models: {', '.join(names)}; "
        "any RecBole model name (e.g. SASRec) runs plain RecBole."
    )


def get_trainer(model_type: ModelType, model_name: str) -> type:
    """Trainer class: the plugin's backbone trainer for ``Paragon<Backbone>``, RecBole's choice for anything else."""
    if model_name.startswith(PREFIX):
        return importlib.import_module("recbole_paragon.training.backbone_trainer").BackboneTrainer
    return recbole_get_trainer(model_type, model_name)
