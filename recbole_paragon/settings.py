"""Reading settings: the yaml under ``properties/`` is the only place a default value is written.

:func:`setting` reads a key from a RecBole ``Config`` or a plain mapping; a key that is missing (or set to ``None``)
takes the value ``properties/overall.yaml`` gives it, and a key the yaml does not know is a clear error, so code
never carries a second, drifting literal. Plain mappings work too, so objects built outside a RecBole run (tests,
notebooks) get the same defaults as a run.
"""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional

import warnings

import torch
import yaml

from recbole_paragon.schema import OLD_NAMES, SCHEMA, SettingWarning, check_setting



def _properties_dir() -> str:
    """The plugin's yaml folder: ``properties/`` beside the package in a checkout (and an editable install), or
    ``recbole_paragon/properties/`` where ``pip install .`` copied it (setup.py maps the one onto the other)."""
    package = os.path.dirname(os.path.realpath(__file__))
    for candidate in (os.path.join(package, "properties"), os.path.join(os.path.dirname(package), "properties")):
        if os.path.isfile(os.path.join(candidate, "overall.yaml")):
            return candidate
    raise FileNotFoundError(f"recbole-paragon's properties/overall.yaml is missing beside {package}: reinstall it")


#: The plugin's yaml: overall.yaml, dataset/<dataset>.yaml, model/<Model>.yaml, hyper_example.test.
PROPERTIES_DIR = _properties_dir()
OVERALL_YAML = os.path.join(PROPERTIES_DIR, "overall.yaml")


def yaml_loader() -> type:
    """RecBole's yaml loader (it reads ``1e-3`` as a float, as RecBole's own config files expect)."""
    from recbole.config import Config as RecBoleConfig

    return RecBoleConfig._build_yaml_loader(None)


@functools.lru_cache(maxsize=None)
def _defaults() -> Dict[str, Any]:
    with open(OVERALL_YAML, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=yaml_loader()) or {}


def yaml_defaults() -> Dict[str, Any]:
    """A copy of every default of ``properties/overall.yaml``."""
    return dict(_defaults())


def _lookup(config: Any, key: str) -> Any:
    if config is None:
        return None
    try:
        return config[key]
    except (KeyError, IndexError, TypeError):
        return None


def _holds(config: Any, key: str) -> bool:
    """Whether ``config`` itself holds ``key``: a mapping's keys, or RecBole's ``Config``'s final dict (an object
    that only has ``__getitem__`` is never asked ``in``: Python would iterate it by index)."""
    if isinstance(config, Mapping):
        return key in config
    final = getattr(config, "final_config_dict", None)
    return isinstance(final, Mapping) and key in final


def setting(config: Any, key: str) -> Any:
    """``config[key]``, checked against its rule in :mod:`recbole_paragon.schema`; when missing or ``None``, the
    default of ``properties/overall.yaml`` — except that a setting whose rule is ``optional`` (none is a value of its
    own, e.g. ``finetune_functional_max_objectives: ~`` = no limit) reads ``None`` where the config holds ``~``.

    ``config`` may be RecBole's ``Config`` (missing key → ``None``), a plain mapping or ``None``; a plain mapping
    written before a key was renamed (a notebook's dict, an old bundle's config) is read under the old name, with a
    warning. A key that the yaml does not define and the config does not hold raises ``KeyError`` naming the key
    and the yaml file.
    """
    value = _lookup(config, key)
    if value is None and key in OLD_NAMES:
        value = _lookup(config, OLD_NAMES[key])
        if value is not None:
            warnings.warn(f"setting '{OLD_NAMES[key]}' was renamed '{key}'", SettingWarning, stacklevel=2)
    if value is not None:
        return check_setting(key, value)
    if getattr(SCHEMA.get(key), "optional", False) and _holds(config, key):
        return None  # ~ written for a setting whose own value may be none (not "the default")
    defaults = _defaults()
    if key not in defaults:
        raise KeyError(f"setting '{key}' is not set and has no default: add it to your config or to {OVERALL_YAML}")
    return defaults[key]


def with_defaults(prefix: str, **values: Any) -> Dict[str, Any]:
    """``values`` with every ``None`` replaced by the yaml default of ``prefix + name`` (constructor arguments)."""
    return {name: setting(None, prefix + name) if value is None else value for name, value in values.items()}


def setting_names(config: Any, key: str) -> List[str]:
    """A list of names; the command line's ``--key=[a,b]`` (or ``a,b``) arrives as one string and is split here."""
    value = setting(config, key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [part.strip(" '\"") for part in value.strip("[]() ").split(",") if part.strip(" '\"")]
    return list(value)


def settings_with_prefix(config: Any, *prefixes: str) -> Dict[str, Any]:
    """Every key of the config (and of the yaml defaults) starting with one of ``prefixes``, with its value."""
    keys = {k for k in _defaults() if k.startswith(prefixes)}
    final = getattr(config, "final_config_dict", config if isinstance(config, dict) else {})
    keys |= {k for k in final if k.startswith(prefixes)}
    return {key: setting(config, key) for key in sorted(keys)}


@contextlib.contextmanager
def torch_threads(count: Optional[int]) -> Iterator[None]:
    """Run a block with ``count`` torch threads (None: unchanged), restoring the previous count after it.

    Small-batch work (adapter tuning, generator training and sampling) is fastest on one thread; more threads only
    spin-wait on each other. The count is switched only where it differs.
    """
    previous = torch.get_num_threads()
    switch = count is not None and int(count) != previous
    if switch:
        torch.set_num_threads(int(count))
    try:
        yield
    finally:
        if switch:
            torch.set_num_threads(previous)
