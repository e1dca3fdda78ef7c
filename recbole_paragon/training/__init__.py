"""Training: the backbone (RecBole's loop), adapter tuning on cached states, the adapter bank, the generators."""
from recbole_paragon.training.adapter_trainer import AdapterTrainer
from recbole_paragon.training.backbone_trainer import BackboneTrainer
from recbole_paragon.training.generator_trainer import GeneratorTrainer

__all__ = ["AdapterTrainer", "BackboneTrainer", "GeneratorTrainer"]
