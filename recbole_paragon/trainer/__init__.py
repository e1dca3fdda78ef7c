from recbole_paragon.trainer.adapter_trainer import AdapterTrainer
from recbole_paragon.trainer.backbone_trainer import BackboneTrainer
from recbole_paragon.trainer.generator_trainer import GeneratorTrainer

__all__ = ["AdapterTrainer", "BackboneTrainer", "GeneratorTrainer"]
