"""What a bundle needs to rebuild its model without the raw data: the config as JSON and a stand-in dataset.

A RecBole model's ``__init__(config, dataset)`` reads the dataset only for sizes, field names and (feature-aware
models) the item feature table. :func:`dataset_facts` records those at export; :class:`StandInDataset` answers the
same questions from them at load. The config travels as JSON (:func:`encode_config`); RecBole's enums are written
as ``{"__enum__": "ModelType.SEQUENTIAL"}`` and looked up in a fixed list when read back, so nothing executes.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

import numpy as np
import torch
from recbole.data.interaction import Interaction
from recbole.utils import EvaluatorType, FeatureSource, FeatureType, InputType, ModelType

from recbole_paragon.artifacts import ArtifactError, to_jsonable

#: RecBole's enum types a config may hold, by name: the only non-JSON values a bundle's config restores.
ENUMS = {cls.__name__: cls for cls in (ModelType, InputType, EvaluatorType, FeatureType, FeatureSource)}
_DROPPED = {"device"}  # a bundle always loads on the CPU


class BundleConfig:
    """The RecBole config values of the exported run, read like RecBole's ``Config`` (missing key -> ``None``)."""

    def __init__(self, values: Dict[str, Any]) -> None:
        self.final_config_dict = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self.final_config_dict.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.final_config_dict[key] = value

    def __contains__(self, key: str) -> bool:
        return key in self.final_config_dict


def encode_config(config) -> Dict[str, Any]:
    """The run's config values as JSON: enums tagged, the device dropped, anything else non-JSON an error."""
    return {key: _encode(key, value) for key, value in config.final_config_dict.items() if key not in _DROPPED}


def _encode(key: str, value: Any) -> Any:
    if type(value).__name__ in ENUMS and isinstance(value, ENUMS[type(value).__name__]):
        return {"__enum__": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, Mapping) and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in value):
        return {str(k): _encode(key, v) for k, v in value.items()}  # JSON keys are strings: {4: 300} -> {"4": 300}
    if isinstance(value, (list, tuple)):
        return [_encode(key, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return to_jsonable(value)
    raise ValueError(f"config key {key!r} holds a {type(value).__name__}, which a bundle cannot store as JSON: "
                     f"set it to numbers, strings, lists or dicts")


def decode_config(encoded: Mapping[str, Any], source: str) -> BundleConfig:
    """:func:`encode_config`'s output back into a config (CPU device); an unknown enum raises ArtifactError."""
    values = {key: _decode(key, value, source) for key, value in encoded.items()}
    values["device"] = torch.device("cpu")
    return BundleConfig(values)


def _decode(key: str, value: Any, source: str) -> Any:
    if isinstance(value, dict) and set(value) == {"__enum__"}:
        kind, _, name = str(value["__enum__"]).partition(".")
        if kind not in ENUMS or name not in ENUMS[kind].__members__:
            raise ArtifactError(f"{source}: config key {key!r} names an unknown enum {value['__enum__']!r}")
        return ENUMS[kind][name]
    if isinstance(value, dict):
        return {k: _decode(key, v, source) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(key, v, source) for v in value]
    return value


# -- the dataset ---------------------------------------------------------------------------------------------------
def item_feature_tensors(dataset) -> Dict[str, torch.Tensor]:
    """Every column of the dataset's item feature table (row = internal item id), or nothing."""
    features = getattr(dataset, "item_feat", None)
    return {} if features is None else {name: features[name].clone() for name in features.columns}


def dataset_facts(dataset) -> Dict[str, Any]:
    """Sizes, field names and feature types the model's ``__init__`` reads, for :class:`StandInDataset`."""
    item_fields = list(item_feature_tensors(dataset))
    fields = [dataset.uid_field, dataset.iid_field] + [f for f in item_fields if f != dataset.iid_field]
    return {
        "dataset_name": dataset.dataset_name,
        "uid_field": dataset.uid_field,
        "iid_field": dataset.iid_field,
        "item_fields": item_fields,
        "num": {field: int(dataset.num(field)) for field in fields},
        "field2type": {field: dataset.field2type[field].name for field in fields},
        "field2source": {field: dataset.field2source[field].name for field in fields
                         if isinstance(dataset.field2source.get(field), FeatureSource)},
        "field2seqlen": {field: int(dataset.field2seqlen[field]) for field in fields if field in dataset.field2seqlen},
    }


class StandInDataset:
    """Answers what a RecBole model's ``__init__`` asks a dataset, from :func:`dataset_facts` and item features."""

    def __init__(self, facts: Mapping[str, Any], item_features: Mapping[str, torch.Tensor], config) -> None:
        self.config = config
        self.dataset_name = facts["dataset_name"]
        self.uid_field = facts["uid_field"]
        self.iid_field = facts["iid_field"]
        self._num = {k: int(v) for k, v in facts["num"].items()}
        self.field2type = {k: FeatureType[v] for k, v in facts["field2type"].items()}
        self.field2source = {k: FeatureSource[v] for k, v in facts.get("field2source", {}).items()}
        self.field2seqlen = {k: int(v) for k, v in facts.get("field2seqlen", {}).items()}
        self.item_feat = Interaction(dict(item_features)) if item_features else None
        self.user_feat = None

    def num(self, field: str) -> int:
        if field not in self._num:
            raise ArtifactError(f"the bundle records no size for field {field!r} (known: {sorted(self._num)}); "
                                f"the model asks for a field the exporting run did not have")
        return self._num[field]

    @property
    def user_num(self) -> int:
        return self._num[self.uid_field]

    @property
    def item_num(self) -> int:
        return self._num[self.iid_field]

    def fields(self, ftype: Optional[Iterable[FeatureType]] = None, source: Optional[Iterable] = None) -> List[str]:
        """Field names, filtered by type and source as RecBole's ``Dataset.fields``."""
        types = set(ftype or FeatureType)
        sources = {s.value if isinstance(s, FeatureSource) else s for s in (source or FeatureSource)}
        return [f for f, t in self.field2type.items() if t in types
                and (f not in self.field2source or self.field2source[f].value in sources)]

    def get_item_feature(self) -> Interaction:
        if self.item_feat is None:
            raise ArtifactError("the bundle holds no item features, but the model needs them")
        return self.item_feat

    def get_user_feature(self):
        raise ArtifactError("a bundle holds no user features; models that need them cannot be served")
