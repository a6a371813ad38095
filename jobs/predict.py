"""Run a READ checkpoint on images: masks, overlays with the SasP points, generated text, one Parquet row each.

    python -m jobs.predict checkpoint=<READ release folder | our export> image=<file> query="the red car" out=<dir>
    python -m jobs.predict checkpoint=<folder> model.clip_path=<CLIP folder> image=<file> \\
        query="Is there a dog? Please segment it." mode=generate model.dtype=bfloat16 out=<dir>
    python -m jobs.predict checkpoint=<folder> inputs=<requests.jsonl> num_workers=2 out=<dir>   # Ray actors

`prompt="..."` instead of `query=` feeds a complete conversation in the checkpoint's format; `trace=true` also
writes traces/<id>.npz. Release folders default to model.numerics=read (READ's arithmetic). Writes masks/,
overlays/, predictions.parquet and config.yaml under `out`.
"""

from __future__ import annotations

import sys

from jobs._config import config_yaml, load_config_derived
from jobs._ray import ray_session
from pipelines.evaluate.config import checkpoint_defaults
from pipelines.predict.config import PredictConfig
from pipelines.predict.driver import predict


def load_predict_config(argv: list[str]) -> PredictConfig:
    """The job's config; model.* and prompt_format.* default to what the checkpoint brings
    (`checkpoint_defaults`)."""
    return load_config_derived(PredictConfig, argv, lambda cfg: checkpoint_defaults(cfg.checkpoint))


def main(argv: list[str] | None = None):
    cfg = load_predict_config(sys.argv[1:] if argv is None else argv)
    cfg.make_local_paths_absolute()
    with ray_session(cfg.ray_address, needed=bool(cfg.inputs)):
        try:
            table = predict(cfg, config_yaml=config_yaml(cfg))
        except ValueError as err:
            raise SystemExit(f"predict: {err}") from err
    rows = table.to_pylist()
    for row in rows[:20]:
        said = f" said {row['generated_text']!r}" if row["generated_text"] else ""
        status = f"error: {row['error']}" if row["error"] else f"mask {row['pred_area']} px{said}"
        print(f"predict: {row['request_id']}: {status}")
    print(f"predict: {len(rows)} requests ({sum(1 for r in rows if r['error'])} errors) -> {cfg.out}")
    return table


if __name__ == "__main__":
    main()
