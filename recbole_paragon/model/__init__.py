from recbole_paragon.model.adapter import Adapter, apply_adapter_vector
from recbole_paragon.model.paragon import ParagonMixin, make_paragon_class, supported_model_names

__all__ = ["Adapter", "apply_adapter_vector", "ParagonMixin", "make_paragon_class", "supported_model_names"]
