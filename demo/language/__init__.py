"""Pretrain the tiny preset's LLaVA on yes/no presence questions: the stand-in for LLaVA's own pretraining."""

from demo.language.config import LanguagePretrainConfig
from demo.language.pretrain import pretrain_language

__all__ = ["LanguagePretrainConfig", "pretrain_language"]
