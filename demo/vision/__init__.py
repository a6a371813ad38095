"""Vision-tower pretraining for the tiny preset: the stand-in for CLIP's pretraining (see pretrain.py)."""

from demo.vision.config import VisionPretrainConfig
from demo.vision.pretrain import pretrain_tower, pretrain_vision

__all__ = ["VisionPretrainConfig", "pretrain_tower", "pretrain_vision"]
