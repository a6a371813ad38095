"""`write_all`: every requested synthetic dataset under one root, plus `synth_summary.json` with the counts."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.synth.ade20k import write_ade20k
from pipelines.synth.coco_parts import write_paco_lvis, write_pascal_part
from pipelines.synth.config import SynthConfig
from pipelines.synth.label_maps import write_cocostuff, write_mapillary
from pipelines.synth.llava import write_llava
from pipelines.synth.reasonseg import write_reasonseg
from pipelines.synth.refer import LAYOUT, write_refer

SUMMARY_FILE = "synth_summary.json"


def write_all(cfg: SynthConfig) -> dict[str, dict]:
    """Write the datasets of `cfg.datasets` under `cfg.out` (a local folder).

    Returns {dataset: {split: {"images": n, "queries": n, ...}}} — the same dict `synth_summary.json` holds.
    REFER queries count sentences (negatives and false premises included); ReasonSeg counts `text` entries;
    llava_vqa one per conversation; ade20k, cocostuff and mapillary count present (not ignored) classes;
    pascal_part and paco_lvis one per annotation.
    """
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict] = {}
    if "reasonseg" in cfg.datasets:
        summary["reasonseg"] = write_reasonseg(cfg, root)
    summary.update(write_refer(cfg, root, [n for n in cfg.datasets if n in LAYOUT]))
    if "llava_vqa" in cfg.datasets:
        summary["llava_vqa"] = write_llava(cfg, root)
    if "ade20k" in cfg.datasets:
        summary["ade20k"] = write_ade20k(cfg, root)
    writers = {"cocostuff": write_cocostuff, "pascal_part": write_pascal_part, "paco_lvis": write_paco_lvis,
               "mapillary": write_mapillary}
    for name, writer in writers.items():
        if name in cfg.datasets:
            summary[name] = writer(cfg, root)
    (root / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True))
    return summary
