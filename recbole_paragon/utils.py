"""Model and trainer lookup: the plugin first, RecBole as fallback (as RecBole-GNN does)."""
from __future__ import annotations

import contextlib
import difflib
import importlib
from typing import Any, Iterator, Optional

import torch
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
        return importlib.import_module("recbole_paragon.trainer").BackboneTrainer
    return recbole_get_trainer(model_type, model_name)


def config_get(config: Any, key: str, default: Any = None) -> Any:
    """``config[key]``, or ``default`` when the key is missing or set to ``None``.

    Works for a plain mapping (missing key → ``KeyError``), for RecBole's ``Config`` (missing key → ``None``) and for
    ``config=None``.
    """
    if config is None:
        return default
    try:
        value = config[key]
    except (KeyError, IndexError, TypeError):
        return default
    return default if value is None else value


def config_names(config: Any, key: str, default: Optional[list] = None) -> list:
    """A list of names from the config; the command line's ``--key=[a,b]`` (or ``a,b``) arrives as one string and
    is split here."""
    value = config_get(config, key, default if default is not None else [])
    if isinstance(value, str):
        value = [part.strip(" '\"") for part in value.strip("[]() ").split(",") if part.strip(" '\"")]
    return list(value)


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """Run a block with ``count`` torch threads (None: unchanged). Small-batch work (adapter tuning, generator
    training and sampling) is fastest on one thread; more threads only spin-wait on each other."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(int(count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
