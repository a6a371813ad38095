"""Synthetic raw datasets in the real on-disk formats (ReasonSeg, REFER family incl. RefCLEF, LLaVA-Instruct, ADE20K).

Scenes of 2-5 coloured shapes with referring expressions generated from what is drawn. `write_all(SynthConfig(...))`
writes a tree; `python -m jobs.synth out=DIR seed=0` is the command-line entry point.
"""

from pipelines.synth.config import DATASETS, SynthConfig
from pipelines.synth.write import SUMMARY_FILE, write_all

__all__ = ["DATASETS", "SUMMARY_FILE", "SynthConfig", "write_all"]
