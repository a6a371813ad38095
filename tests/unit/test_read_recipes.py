"""configs/recipes/*.yaml (READ's training recipes) against the README's table ("READ's recipes": hyper-parameters)
and the tables of docs/recipes.md (mixtures, required keys).

Each recipe is loaded with the job's config loader; every hyper-parameter, the mixture and the `required` keys must
equal its row in the doc, so a YAML edit that the doc does not reflect (or the reverse) fails here.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from jobs._config import load_config
from pipelines.train.config import TrainConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECIPES = ROOT / "configs" / "recipes"
DOC = ROOT / "docs" / "recipes.md"
README = ROOT / "README.md"
READ_IMAGES_PER_UPDATE = 20  # train_read.sh: BATCH_SIZE=2 x GRAD_ACCUMULATION_STEPS=10 on one GPU
DUMMY_WEIGHTS = ["model.llava_path=/w/llava", "model.sam_checkpoint=/w/sam.pth", "model.read_checkpoint=/w/release",
                 "shards_root=/data/shards"]

HYPER_COLUMNS = ["recipe", "lr", "epochs", "steps_per_epoch", "max_steps", "warm-up/decay", "num_classes_per_sample",
                 "LoRA r", "dice_weight", "num_points", "t_pos", "down_sample", "images per update"]
MIX_COLUMNS = ["recipe", "sem_seg", "refer_seg", "correct_refer_seg", "vqa", "neg_refer_seg", "reason_seg"]


def doc_table(heading: str, *, doc: pathlib.Path = DOC, nth: int = 0) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(header cells, {recipe: {column: cell}}) of the `nth` Markdown table after the `## heading` line of `doc`."""
    lines = doc.read_text().splitlines()
    start = lines.index(f"## {heading}")
    tables: list[list[list[str]]] = [[]]
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            tables[-1].append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif tables[-1]:
            tables.append([])
    rows = tables[nth] if nth < len(tables) else []
    assert len(rows) >= 3, f"{doc.name}, '## {heading}': no table {nth}"
    header, body = rows[0], rows[2:]
    assert all(set(cell) <= set("-: ") for cell in rows[1]), f"'## {heading}': second row is not a separator"
    table = {}
    for row in body:
        assert len(row) == len(header), f"'## {heading}': row {row} has {len(row)} cells, header {len(header)}"
        table[row[0].strip("`")] = dict(zip(header, row))
    return header, table


HYPER_HEADER, HYPER = doc_table("READ's recipes", doc=README, nth=1)
_, README_CHECKPOINTS = doc_table("READ's recipes", doc=README, nth=0)
MIX_HEADER, MIX = doc_table("Training mixtures")
_, WEIGHTS = doc_table("Recipes, READ's checkpoints and READ's reported numbers")
NAMES = sorted(p.stem for p in RECIPES.glob("*.yaml"))


def load(name: str) -> TrainConfig:
    return load_config(TrainConfig, ["--config", str(RECIPES / f"{name}.yaml"), *DUMMY_WEIGHTS])


def test_the_doc_has_one_row_per_recipe_in_every_table():
    assert HYPER_HEADER == HYPER_COLUMNS and MIX_HEADER == MIX_COLUMNS
    assert {"read7b_reasonseg_from_sesame", "read7b_referseg_from_sesame", "read7b_reasonseg_from_scratch",
            "read13b_reasonseg_from_scratch"} <= set(NAMES)
    assert sorted(HYPER) == NAMES and sorted(MIX) == NAMES and sorted(WEIGHTS) == NAMES
    assert sorted(README_CHECKPOINTS) == NAMES
    for name, row in README_CHECKPOINTS.items():  # the README names the same READ checkpoint as the doc
        checkpoint = row["READ's checkpoint"].strip("`")
        assert checkpoint.startswith("(") or checkpoint in WEIGHTS[name]["READ checkpoint"], name


@pytest.mark.parametrize("name", NAMES)
def test_recipe_hyper_parameters_match_the_doc(name):
    cfg, row = load(name), HYPER[name]
    assert cfg.lr == pytest.approx(float(row["lr"]), rel=1e-12)
    assert cfg.epochs == int(row["epochs"]) == 20
    assert cfg.steps_per_epoch == int(row["steps_per_epoch"]) == 500
    assert cfg.max_steps == int(row["max_steps"])
    warmup, total = re.fullmatch(r"WarmupDecayLR (\d+) / (\d+)", row["warm-up/decay"]).groups()
    assert (cfg.warmup_num_steps, cfg.total_steps) == (int(warmup), int(total)) == (100, 10_000)
    sched = cfg.to_deepspeed_dict()["scheduler"]
    assert sched["type"] == "WarmupDecayLR"
    assert sched["params"] == {"total_num_steps": 10_000, "warmup_min_lr": 0.0, "warmup_max_lr": cfg.lr,
                               "warmup_num_steps": 100, "warmup_type": "linear"}
    assert cfg.data.num_classes_per_sample == int(row["num_classes_per_sample"]) == 3
    assert cfg.trainable.lora_r == int(row["LoRA r"])
    assert cfg.model.dice_weight == float(row["dice_weight"])
    assert cfg.model.sasp.num_points == int(row["num_points"])
    assert cfg.model.sasp.t_pos == float(row["t_pos"])
    assert cfg.model.sasp.down_sample == int(row["down_sample"])
    images, workers, batch, accumulation = map(int, re.fullmatch(r"(\d+) \((\d+) x (\d+) x (\d+)\)",
                                                                 row["images per update"]).groups())
    assert (cfg.num_workers, cfg.data.batch_size, cfg.gradient_accumulation_steps) == (workers, batch, accumulation)
    assert cfg.num_workers * cfg.data.batch_size * cfg.gradient_accumulation_steps == images == READ_IMAGES_PER_UPDATE
    ds = cfg.to_deepspeed_dict()
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (batch, accumulation)


@pytest.mark.parametrize("name", NAMES)
def test_recipe_mixture_and_required_keys_match_the_doc(name):
    cfg = load(name)
    rates = {s.name: s.rate for s in cfg.data.streams}
    assert rates == {k: float(v) for k, v in MIX[name].items() if k != "recipe" and v != "-"}
    assert all(s.shards.startswith("/data/shards/") for s in cfg.data.streams)
    assert cfg.required == [k.strip() for k in WEIGHTS[name]["required keys"].split(",")]


@pytest.mark.parametrize("name", NAMES)
def test_recipe_fixed_values_are_reads(name):
    """What every READ run shares (train_read.py defaults and ds_config, train_read.sh)."""
    cfg = load(name)
    assert cfg.betas == [0.9, 0.95] and cfg.weight_decay == 0.0 and cfg.gradient_clipping == 1.0
    assert cfg.zero_stage == 2 and cfg.bf16 and cfg.use_gpu and cfg.seed == 42
    assert (cfg.trainable.policy, cfg.trainable.lora_alpha, cfg.trainable.lora_dropout) == ("read", 16, 0.05)
    assert cfg.trainable.lora_target_modules == ["q_proj", "v_proj"]
    assert (cfg.model.ce_weight, cfg.model.bce_weight, cfg.model.sasp.t_neg) == (1.0, 2.0, 0.2)
    assert cfg.data.max_length == 2048 and cfg.model.seg_hidden_position == "before"
    assert cfg.model.preset == ("read-13b" if name.startswith("read13b") else "read-7b")


@pytest.mark.parametrize("name", NAMES)
def test_recipe_stops_naming_its_first_missing_weight(name):
    cfg = load(name)
    with pytest.raises(SystemExit, match=re.escape(cfg.required[0])):
        load_config(TrainConfig, ["--config", str(RECIPES / f"{name}.yaml"), "shards_root=/data/shards"])


@pytest.mark.parametrize("name", NAMES)
def test_recipe_header_names_reads_checkpoint_and_sources(name):
    text = (RECIPES / f"{name}.yaml").read_text()
    header = text[: text.index("\nname:")]
    assert all(line.startswith("#") for line in header.splitlines())
    assert "rui-qian/READ-LLaVA-v1.5-" in header and "train_read.py" in header and "train_read.sh" in header
    assert "10/N" in header  # how to keep 20 images per update on N workers
