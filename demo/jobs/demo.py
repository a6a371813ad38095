"""The whole system on one machine: `make demo`
(python -m demo.jobs.demo [--config demo/configs/demo.yaml] key=value ...).

On a local Ray cluster it starts itself: synthesise raw datasets in the real formats, preprocess them to shards,
build false-premise augmentations, optionally pretrain the tiny vision tower (pretrain_vision=true) and the tiny
LLaVA (pretrain_language=true), evaluate the untrained tiny READ, train it with DeepSpeed under Ray Train on 2
workers, evaluate the trained export, print the all-objects baseline, untrained and trained results per query type,
draw panels, and stop the cluster. Every step is skipped when its output is complete, so a re-run reuses work.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
import pyarrow as pa
import ray

from demo.config import DemoConfig
from demo.jobs import pretrain_language, pretrain_vision
from demo.pointing import gt_masks, similarity_pointing
from demo.report import (BY_EDIT, ciou_ratio, false_premises_by_edit, format_curve,
                         format_language_stages, format_side_by_side, grounding_reached, language_stages,
                         learning_curve, per_query_type, side_by_side, with_summary_columns)
from jobs import augment, evaluate, preprocess, synth, train, visualize
from jobs._config import config_yaml, load_config
from jobs._ray import init_ray
from pipelines import storage
from pipelines.evaluate.baseline import BASELINE_CHECKPOINT, baseline_for_shards
from pipelines.results import load, query_sensitivity
from pipelines.train.config import TrainConfig


def _step(name: str, done_marker: str, run) -> None:
    """Run one demo step unless `done_marker` (the last file that step writes) already exists."""
    if storage.exists(done_marker):
        print(f"[demo] {name}: complete, reusing {done_marker}", flush=True)
        return
    start = time.perf_counter()
    print(f"[demo] {name} ...", flush=True)
    run()
    print(f"[demo] {name}: done in {time.perf_counter() - start:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    cfg = load_config(DemoConfig, sys.argv[1:] if argv is None else argv)
    out, start = cfg.out, time.perf_counter()
    raw, shards = storage.join(out, "raw"), storage.join(out, "shards")
    storage.makedirs(out)
    storage.atomic_write_bytes(storage.join(out, "config.yaml"), config_yaml(cfg).encode())
    started = init_ray(cfg.ray_address, num_cpus=cfg.num_cpus)
    workers, per_shard = f"num_workers={cfg.num_workers}", f"shard_max_samples={cfg.shard_max_samples}"
    try:
        _step("synthesise raw datasets", storage.join(raw, "synth_summary.json"),
              lambda: synth.main([f"out={raw}", f"seed={cfg.seed}", *cfg.synth]))
        for item in cfg.preprocess:
            dataset, split = item.split(":")
            dest = storage.join(shards, f"{dataset}-{split}")
            _step(f"preprocess {dataset}/{split}", storage.join(dest, "manifest.parquet"), lambda d=dataset, s=split, o=dest:
                  preprocess.main([f"dataset={d}", f"root={raw}", f"split={s}", f"out={o}", workers, per_shard]))
        for item in cfg.augment:
            dataset, split = item.split(":")
            dest = storage.join(shards, f"{dataset}_fp-{split}")
            _step(f"augment {dataset}/{split}", storage.join(dest, "summary.parquet"), lambda d=dataset, s=split, o=dest:
                  augment.main([f"dataset={d}", f"root={raw}", f"split={s}", f"out={o}", f"seed={cfg.seed}", workers,
                                per_shard]))
        data = "data=[" + ",".join(storage.join(shards, name) for name in cfg.eval_data) + "]"
        untrained, trained = storage.join(out, "eval-untrained"), storage.join(out, "eval")
        # the same architecture and prompt format as trained
        model_overrides = [arg for arg in cfg.train if arg.startswith(("model.", "prompt_format."))]
        architecture = [arg for arg in model_overrides if arg.startswith("model.")]
        weights = _pretrained_tower(cfg, out, architecture) if cfg.pretrain_vision else []
        if cfg.pretrain_language:  # the pretrained LLaVA holds the tower it was trained with
            weights = _pretrained_llava(cfg, out, [*model_overrides, *weights])
        model_overrides += weights
        _step("evaluate the untrained tiny model", storage.join(untrained, "summary.parquet"),
              lambda: evaluate.main(["model.preset=tiny", *model_overrides, data, f"out={untrained}", workers]))
        recipe = [arg for path in cfg.train_configs for arg in ("--config", path)]
        train_argv = [*recipe, "name=train", f"storage_path={out}", f"shards_root={shards}", *cfg.train, *weights]
        stages = _stages(cfg, train_argv)
        baseline = per_query_type(baseline_for_shards([storage.join(shards, n) for n in cfg.eval_data])[0])
        for stop in stages:
            dest = trained if stop == stages[-1] else storage.join(out, f"eval-step-{stop:06d}")
            _step(f"train to step {stop} (Ray Train + DeepSpeed), then evaluate", storage.join(dest, "summary.parquet"),
                  lambda stop=stop, dest=dest: _train_and_evaluate(train_argv, stop, dest, data, workers, out))
            if cfg.grounding_margin and grounding_reached(
                    per_query_type(load(dest)[1]), baseline, dataset=cfg.goal_dataset, see_dataset=cfg.see_dataset,
                    margin=cfg.grounding_margin, see_goal=cfg.see_goal):
                print(f"[demo] grounding goal reached at step {stop}; stopping training", flush=True)
                stages, trained = [s for s in stages if s <= stop], dest
                break
        if len(stages) > 1:
            _curve(cfg, out, stages, trained)
        table = _compare(cfg, out, baseline, untrained, trained)
        viz = storage.join(out, "viz")
        _step("draw panels", storage.join(viz, "DONE"), lambda: (
            visualize.main([trained, f"dataset={cfg.goal_dataset}", f"limit={cfg.num_panels}", f"dest={viz}"]),
            storage.atomic_write_bytes(storage.join(viz, "DONE"), b"")))
    finally:
        if started:
            ray.shutdown()
    print(f"[demo] finished in {time.perf_counter() - start:.0f}s; outputs under {out}")
    return table


def _pretrained_tower(cfg: DemoConfig, out: str, model_overrides: list[str]) -> list[str]:
    """Pretrain the vision tower into `<out>/vision/` (unless complete); returns the override that loads it."""
    vision = storage.join(out, "vision")
    weights = storage.join(vision, pretrain_vision.WEIGHTS)
    _step("pretrain the vision tower on fresh scenes", weights, lambda: pretrain_vision.main(
        [f"out={vision}", f"seed={cfg.seed}", f"num_cpus={cfg.num_cpus}", *model_overrides, *cfg.vision]))
    return [f"model.tiny.vision_checkpoint={weights}"]


def _pretrained_llava(cfg: DemoConfig, out: str, model_overrides: list[str]) -> list[str]:
    """Pretrain the tiny LLaVA into `<out>/language/` (one run) or `<out>/language/stage-<k>/` (a curriculum, each
    stage from the previous stage's llava/, which holds the tower: a later stage does not load the tower again),
    skipping complete runs; returns the override that loads the last one."""
    language = storage.join(out, "language")
    stages = cfg.language_stages or [[]]
    later = [o for o in model_overrides if not o.startswith("model.tiny.vision_checkpoint=")]
    previous: list[str] = []
    metrics: dict[str, pd.DataFrame] = {}
    for k, options in enumerate(stages, start=1):
        dest = storage.join(language, f"stage-{k}") if cfg.language_stages else language
        folder = storage.join(dest, pretrain_language.LLAVA_DIR)
        model = later if previous else model_overrides
        argv = [f"out={dest}", f"num_cpus={cfg.num_cpus}", *model, *cfg.language, *options, *previous]
        name = f"stage {k}/{len(stages)} " if cfg.language_stages else ""
        _step(f"pretrain the tiny LLaVA ({name}demo.jobs.pretrain_language)",
              storage.join(folder, pretrain_language.COMPLETE), lambda argv=argv: pretrain_language.main(argv))
        previous = [f"model.llava_path={folder}"]
        table = storage.join(dest, pretrain_language.METRICS)
        if storage.exists(table):  # a llava/ copied in without its run's metrics has nothing to show
            metrics[f"stage-{k}" if cfg.language_stages else "language"] = storage.read_parquet(table).to_pandas()
    if metrics:
        print("[demo] the tiny LLaVA's warm start, held out at the end of each stage or at the step it kept "
              "(keep_best): caption words right, colour lookups right, yes/no, pointing AUC (0.5: chance) and hottest "
              "patch on the object, greedy answers' See; in %:")
        print(format_language_stages(language_stages(metrics)), flush=True)
    return previous


def _stages(cfg: DemoConfig, train_argv: list[str]) -> list[int]:
    """Optimizer steps after which the demo evaluates: every `eval_every` steps, and always the last step."""
    last = load_config(TrainConfig, train_argv).last_step
    return sorted({*range(cfg.eval_every, last, cfg.eval_every), last} if cfg.eval_every else {last})


def _train_and_evaluate(train_argv: list[str], stop: int, dest: str, data: str, workers: str, out: str) -> None:
    """Train (resuming the run) up to step `stop`, evaluate its export into `dest`, and record the training time."""
    began = time.perf_counter()
    train.main([*train_argv, f"max_steps={stop}"])
    seconds = time.perf_counter() - began
    evaluate.main([f"checkpoint={storage.join(out, 'train', 'export')}", data, f"out={dest}", workers])
    storage.atomic_write_bytes(storage.join(dest, "train_stage.json"),
                               json.dumps({"step": stop, "train_s": seconds}).encode())


def _curve(cfg: DemoConfig, out: str, stages: list[int], final: str) -> None:
    """cIoU per query type against cumulative training wall time, printed and saved as curve.parquet."""
    rows, wall = [], 0.0
    for stop in stages:
        dest = final if stop == stages[-1] else storage.join(out, f"eval-step-{stop:06d}")
        wall += json.loads(storage.read_bytes(storage.join(dest, "train_stage.json")))["train_s"]
        rows.append((stop, wall, load(dest)[1]))
    curve = learning_curve(rows)
    storage.atomic_write_parquet(storage.join(out, "curve.parquet"), pa.Table.from_pandas(curve))
    print(f"\n[demo] learning curve, {cfg.goal_dataset} cIoU per query type (%):")
    print(format_curve(curve, dataset=cfg.goal_dataset))
    print(f"[demo] learning curve, {cfg.see_dataset} See per query type (%):")
    print(format_curve(curve, dataset=cfg.see_dataset, metric="see"))


def _compare(cfg: DemoConfig, out: str, baseline: pd.DataFrame, untrained: str, trained: str) -> pd.DataFrame:
    """Baseline, untrained and trained per query type: printed, and saved as Parquet for pandas."""
    queries = {"untrained": load(untrained)[1], "trained": load(trained)[1]}
    tables = {"baseline": baseline, **{name: per_query_type(rows) for name, rows in queries.items()}}
    baselines = with_summary_columns(tables["baseline"], run_id="baseline", checkpoint=BASELINE_CHECKPOINT)
    storage.atomic_write_parquet(storage.join(out, "baselines.parquet"), pa.Table.from_pandas(baselines))
    long = pd.concat([t.assign(model=name) for name, t in tables.items()], ignore_index=True)
    storage.atomic_write_parquet(storage.join(out, "by_query_type.parquet"), pa.Table.from_pandas(long))
    table = side_by_side(tables)
    print("\n[demo] all-objects baseline vs untrained vs trained, per query type (metrics in %):")
    print(format_side_by_side(table))
    sensitivity = pd.concat([query_sensitivity(rows).assign(model=name) for name, rows in queries.items()],
                            ignore_index=True)
    storage.atomic_write_parquet(storage.join(out, "query_sensitivity.parquet"), pa.Table.from_pandas(sensitivity))
    print("[demo] same-mask IoU between the predictions for different queries of one image (1.0: the text is "
          "ignored, objectness only; lower: the mask follows the query):")
    print(sensitivity.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    masks = gt_masks([storage.join(out, "shards", name) for name in cfg.eval_data])
    pointing = pd.concat([similarity_pointing(rows, masks).assign(model=name) for name, rows in queries.items()],
                         ignore_index=True)
    storage.atomic_write_parquet(storage.join(out, "similarity_pointing.parquet"), pa.Table.from_pandas(pointing))
    print(f"[demo] does the [SEG] similarity map point at the queried object? {cfg.goal_dataset}, AUC of target "
          "patches against the rest (0.5: chance) and how often the hottest patch touches it:")
    goal = pointing[pointing["dataset"] == cfg.goal_dataset]
    wide = goal.pivot_table(index="query_type", columns="model", values=["auc", "hit"], sort=False)
    wide = wide[[(metric, model) for metric in ("auc", "hit") for model in queries]]
    wide.columns = [f"{metric}_{model}" for metric, model in wide.columns]
    print(wide.reset_index().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    refused = pd.concat([false_premises_by_edit(rows).assign(model=name) for name, rows in queries.items()],
                        ignore_index=True)
    storage.atomic_write_parquet(storage.join(out, "false_premises_by_edit.parquet"), pa.Table.from_pandas(refused))
    print("[demo] false premises refused per rewritten element (%); see: no [SEG] or an empty mask, as See counts; "
          "said_no_seg: no [SEG] in the generated words:")
    wide = refused.pivot_table(index=[*BY_EDIT, "n"], columns="model", values=["see", "said_no_seg"])
    wide = wide[[(metric, model) for metric in ("see", "said_no_seg") for model in queries]]
    wide.columns = [f"{metric}_{model}" for metric, model in wide.columns]
    print(format_side_by_side(wide.reset_index(), keys=BY_EDIT))
    ratio = ciou_ratio(tables["trained"], tables["untrained"], dataset=cfg.goal_dataset, split=cfg.goal_split)
    verdict = "reached" if ratio >= cfg.goal_ciou_ratio else "NOT reached"
    print(f"[demo] {cfg.goal_dataset}/{cfg.goal_split}: trained cIoU = {ratio:.1f}x untrained "
          f"(goal >= {cfg.goal_ciou_ratio}x: {verdict})", flush=True)
    return table


if __name__ == "__main__":
    main()
