"""Write the synthetic raw datasets: `python -m jobs.synth out=DIR seed=0 [image_size=[640,480]] [key=value ...]`.

Writes ReasonSeg, the REFER family (RefCOCO/+/g, R-RefCOCO*, FP-RefCOCO*, RefCLEF), LLaVA-Instruct and ADE20K trees in
their real on-disk formats, as READ's loaders read them, under `out` (see pipelines/synth), plus `synth_summary.json`
(counts) and the resolved `config.yaml`.
"""

from __future__ import annotations

import json
import sys
import time

from jobs._config import load_config, write_config
from pipelines.synth import SynthConfig, write_all


def main(argv: list[str] | None = None) -> dict[str, dict]:
    cfg = load_config(SynthConfig, sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    summary = write_all(cfg)
    write_config(cfg.out, cfg)
    for name, splits in summary.items():
        print(f"synth: {name:<11} " + "  ".join(f"{split} {json.dumps(counts)}" for split, counts in splits.items()))
    images = sum(s["images"] for splits in summary.values() for s in splits.values())
    print(f"synth: {images} images (REFER images counted per dataset) in {time.perf_counter() - start:.1f}s "
          f"under {cfg.out}")
    return summary


if __name__ == "__main__":
    main()
