"""Pretrain the tiny preset's LLaVA on yes/no presence questions: the stand-in for LLaVA's own pretraining."""

from pipelines.language.config import LanguagePretrainConfig
from pipelines.language.pretrain import pretrain_language

__all__ = ["LanguagePretrainConfig", "pretrain_language"]
