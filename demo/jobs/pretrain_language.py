"""Pretrain the tiny preset's LLaVA on fresh synthetic scenes, as one Ray task: yes/no presence questions, colour
lookups ("What colour is the star?"), pointing its [SEG] similarity map at the object a segmentation request names,
READ's answers to those requests, and/or captions of the scene (LLaVA's first stage).

    python -m demo.jobs.pretrain_language out=runs/language [steps=2500] [kinds=[colour]]
        [objectives=[caption,lookup,presence,pointing,answers]] [model.llava_path=<an earlier run>/llava]
        [keep_best=answer_see] [restart_step=1000 "restart_below={acc_shape: 0.75}"] [ray_address=auto]

Writes llava/ (a Hugging Face LLaVA folder: load it into READ with model.llava_path=<out>/llava, as LLaVA-1.5),
metrics.parquet (held-out caption words predicted right, colour and shape; colour lookups answered right, chance
1/7; yes/no accuracy per question kind, chance 50%; pointing AUC among the scene's objects per query type, chance
0.5; answer CE and greedy decisions: true premises kept, false premises refused, See; `kept`: the evaluation whose
weights llava/ holds, the last one unless keep_best names a held-out metric to keep the best of; `attempt`, with
restart_step: the rows of an attempt that was still on its plateau there come before those of the attempt that started
over) and config.yaml. With model.llava_path set to the llava/ folder of an earlier run, training continues from it:
a curriculum is one run per stage (e.g. captions first, then colour lookups, then presence questions, then READ's
answers). See demo/language/pretrain.py for why.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import pyarrow as pa

from demo.language import LanguagePretrainConfig, pretrain_language
from demo.language.pretrain import target_shortfall
from demo.language.restarts import restart_lines
from jobs._config import config_yaml, load_config
from jobs._ray import run_one_task
from pipelines import storage
from pipelines.train.preflight import check_weight_paths

LLAVA_DIR = "llava"
COMPLETE = "config.json"
"""Written last inside llava/: its presence means the folder is complete."""
METRICS = "metrics.parquet"
"""The held-out evaluations, one row each, beside llava/ (written before it)."""


def _report(row: dict) -> None:
    kinds = " ".join(f"{k.removeprefix('acc_')} {100 * v:.1f}%" for k, v in row.items() if k.startswith("acc_"))
    presence = f" yes/no {kinds} (chance 50%)" if kinds else ""
    caption = (f" caption words right: colour {100 * row['caption_colour']:.0f}%, shape "
               f"{100 * row['caption_shape']:.0f}%" if "caption_colour" in row else "")
    lookup = f" colour lookups right {100 * row['lookup_acc']:.1f}% (chance 14%)" if "lookup_acc" in row else ""
    pointing = (f" pointing AUC {row['point_auc']:.2f} (chance 0.5), hottest patch on the object "
                f"{100 * row['point_hit']:.0f}%" if "point_auc" in row else "")
    answers = f" answer CE {row['answer_ce']:.3f}" if "answer_ce" in row else ""
    if "answer_refused" in row:
        answers += (f", greedy answers keep {100 * row['answer_kept']:.0f}% of true premises and refuse "
                    f"{100 * row['answer_refused']:.0f}% of false ones (See {100 * row['answer_see']:.1f})")
    attempt = f"attempt {row['attempt']} " if "attempt" in row else ""
    print(f"[pretrain_language] {attempt}step {row['step']} {row['seconds']:.0f}s loss {row['loss']:.3f}{caption}"
          f"{presence}{lookup}{pointing}{answers}", flush=True)


def _pretrain(cfg: LanguagePretrainConfig) -> tuple[dict[str, bytes], list[dict]]:
    llava, tokenizer, rows = pretrain_language(cfg, log=_report)
    with tempfile.TemporaryDirectory() as tmp:
        llava.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in pathlib.Path(tmp).iterdir() if p.is_file()}
    return files, rows


def main(argv: list[str] | None = None) -> list[dict]:
    cfg = load_config(LanguagePretrainConfig, sys.argv[1:] if argv is None else argv)
    try:
        check_weight_paths(cfg.model)  # an earlier stage's llava/, a pretrained tower: before the Ray task starts
    except ValueError as err:
        raise SystemExit(f"bad configuration: {err}") from err
    storage.makedirs(cfg.out)
    storage.atomic_write_bytes(storage.join(cfg.out, "config.yaml"), config_yaml(cfg).encode())
    files, rows = run_one_task(_pretrain, cfg, address=cfg.ray_address, num_cpus=cfg.num_cpus)
    storage.atomic_write_parquet(storage.join(cfg.out, METRICS), pa.Table.from_pylist(rows))
    folder = storage.join(cfg.out, LLAVA_DIR)
    storage.makedirs(folder)
    for name in sorted(files, key=lambda n: n == COMPLETE):  # config.json last
        storage.atomic_write_bytes(storage.join(folder, name), files[name])
    for line in restart_lines(cfg, rows):
        print(f"[pretrain_language] {line}", flush=True)
    if cfg.keep_best:
        kept = next(row for row in rows if row["kept"])
        print(f"[pretrain_language] keep_best={cfg.keep_best}: writing the LLaVA of step {kept['step']} "
              f"({cfg.keep_best} {kept[cfg.keep_best]:.3f}; last step {rows[-1]['step']}: "
              f"{rows[-1].get(cfg.keep_best, float('nan')):.3f})", flush=True)
    if shortfall := target_shortfall(cfg, rows):
        print(f"[pretrain_language] WARNING: {shortfall}", flush=True)
    print(f"[pretrain_language] wrote {folder}; use model.llava_path=<that folder>")
    return rows


if __name__ == "__main__":
    main()
