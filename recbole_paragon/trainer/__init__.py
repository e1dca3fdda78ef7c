from recbole_paragon.trainer.backbone_trainer import BackboneTrainer

__all__ = ["BackboneTrainer"]
