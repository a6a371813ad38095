"""demo.jobs.demo end to end, cut to CI size: synth -> preprocess -> augment -> eval -> train (2 workers, DeepSpeed
under Ray Train) -> eval -> baseline/untrained/trained tables -> panels, on a local Ray cluster the demo starts itself;
then a re-run that reuses every step."""

from __future__ import annotations

import pathlib

import pandas as pd
import pytest
import yaml

from demo.jobs.demo import main
from pipelines.evaluate.metrics import summarize
from pipelines.results import load
from schemas.results import SUMMARY_SCHEMA

REPO = pathlib.Path(__file__).resolve().parents[3]


def _argv(out: pathlib.Path) -> list[str]:
    """demo/configs/demo.yaml, cut to CI size by a second YAML file (lists replace the demo's lists)."""
    small = out.parent / "demo_small.yaml"
    small.write_text(yaml.safe_dump({
        "out": str(out), "num_panels": 2, "shard_max_samples": 4,
        "synth": ["image_size=[48,48]", "max_objects=3", "datasets=[refcoco,R-refcoco,fprefcoco,llava_vqa]",
                  "num_refcoco_train=12", "num_refcoco_val=4", "num_refcoco_testA=2", "num_refcoco_testB=2",
                  "num_llava=4"],
        "train": ["steps_per_epoch=6", "checkpoint_every=3", "warmup_num_steps=1", "log_every=3",
                  "data.num_workers=0"],
        "eval_every": 3,
        "pretrain_vision": True,
        "vision": ["steps=4", "eval_every=2", "eval_scenes=8", "batch_size=4"],
        "pretrain_language": True,
        "language": ["steps=4", "eval_every=2", "eval_questions=8", "batch_size=4", "warmup_steps=1"],
    }))
    return ["--config", str(REPO / "demo" / "configs" / "demo.yaml"), "--config", str(small)]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, main(_argv(out))


def test_demo_writes_every_output(demo_out):
    out, _ = demo_out
    for name in ("raw/synth_summary.json", "shards/refcoco-train/manifest.parquet",
                 "shards/refcoco_fp-train/summary.parquet", "eval-untrained/summary.parquet",
                 "train/metrics.parquet", "train/export/read_config.json", "eval/summary.parquet",
                 "baselines.parquet", "by_query_type.parquet", "config.yaml", "vision/vision_tower.safetensors",
                 "vision/metrics.parquet", "language/metrics.parquet", "language/llava/config.json"):
        assert (out / name).exists(), name
    assert len(list((out / "viz").glob("*.png"))) == 2
    curve = pd.read_parquet(out / "curve.parquet")  # eval_every=3 of 6 steps: evaluated after steps 3 and 6
    assert sorted(set(curve["step"])) == [3, 6] and (curve["train_wall_s"] > 0).all()
    assert (out / "eval-step-000003" / "summary.parquet").exists()


def test_the_language_stage_starts_from_the_tower_and_every_model_from_it(demo_out):
    out, _ = demo_out
    weights = str(out / "vision" / "vision_tower.safetensors")
    language = yaml.safe_load((out / "language" / "config.yaml").read_text())
    assert language["model"]["tiny"]["vision_checkpoint"] == weights and language["model"]["llava_path"] == ""
    for folder in ("eval-untrained", "train"):
        saved = yaml.safe_load((out / folder / "config.yaml").read_text())
        assert saved["model"]["llava_path"] == str(out / "language" / "llava"), folder
        assert saved["model"]["tiny"]["vision_checkpoint"] == "", folder  # the LLaVA folder already holds that tower


def test_tables_compare_baseline_untrained_and_trained_per_query_type(demo_out):
    out, table = demo_out
    _, trained_queries = load(str(out / "eval"))
    assert set(trained_queries["dataset"]) == {"refcoco", "fprefcoco"}
    refcoco = table[table["dataset"] == "refcoco"]
    assert "all" in set(refcoco["query_type"]) and len(refcoco) >= 3
    for model in ("baseline", "untrained", "trained"):
        assert refcoco[f"ciou_{model}"].notna().all()
    # The printed trained cIoU is exactly what pandas recomputes from the Parquet rows.
    rows = trained_queries[trained_queries["dataset"] == "refcoco"]
    expected = summarize(rows.assign(query_type="all"), by=("dataset", "split", "query_type"), add_overall=False)
    got = refcoco[refcoco["query_type"] == "all"]["ciou_trained"].iloc[0]
    assert got == pytest.approx(expected["ciou"].iloc[0])
    # False premises: the baseline always claims the object is there, so its See is 0 on them.
    fp = table[(table["dataset"] == "fprefcoco") & (table["query_type"] == "false_premise")]
    assert fp["see_baseline"].iloc[0] == 0.0


def test_query_sensitivity_is_saved_for_untrained_and_trained(demo_out):
    out, _ = demo_out
    sensitivity = pd.read_parquet(out / "query_sensitivity.parquet")
    refcoco = sensitivity[sensitivity["dataset"] == "refcoco"].set_index("model")
    assert set(refcoco.index) == {"untrained", "trained"}
    assert ((refcoco["pairs"] > 0) & refcoco["same_mask_iou"].between(0, 1)).all()


def test_similarity_pointing_is_saved_for_untrained_and_trained(demo_out):
    out, _ = demo_out
    pointing = pd.read_parquet(out / "similarity_pointing.parquet")
    refcoco = pointing[(pointing["dataset"] == "refcoco") & (pointing["query_type"] == "all")].set_index("model")
    assert set(refcoco.index) == {"untrained", "trained"}
    assert (refcoco["n"] > 0).all() and refcoco[["auc", "hit"]].stack().between(0, 1).all()
    per_type = pointing[(pointing["dataset"] == "refcoco") & (pointing["query_type"] != "all")]
    assert per_type.groupby("model")["n"].sum().to_dict() == refcoco["n"].to_dict()


def test_false_premises_are_broken_down_by_edit(demo_out):
    out, _ = demo_out
    refused = pd.read_parquet(out / "false_premises_by_edit.parquet")
    assert set(refused["model"]) == {"untrained", "trained"}
    trained = refused[refused["model"] == "trained"].set_index("edit")
    _, queries = load(str(out / "eval"))
    fp = queries[(queries["dataset"] == "fprefcoco") & ~queries["gt_present"]]
    assert set(trained.index) == {"all", *fp["edit"]} and "" not in set(fp["edit"])
    assert trained.loc["all", "n"] == len(fp)
    assert trained.loc["all", "see"] == pytest.approx(1 - fp["pred_present"].mean())
    said = ~fp["generated_text"].str.contains("[SEG]", regex=False)
    assert trained.loc["all", "said_no_seg"] == pytest.approx(said.mean())
    assert said.mean() <= 1 - fp["pred_present"].mean()  # refused in words is one way See counts a refusal


def test_baselines_parquet_has_the_summary_columns(demo_out):
    out, _ = demo_out
    baselines = pd.read_parquet(out / "baselines.parquet")
    assert [c for c in baselines.columns if c != "query_type"] == SUMMARY_SCHEMA.names
    assert (baselines["checkpoint"] == "baseline:segment-everything").all()


def test_rerun_reuses_every_step(demo_out, capsys):
    out, first = demo_out
    capsys.readouterr()
    again = main(_argv(out))
    printed = capsys.readouterr().out
    assert printed.count("complete, reusing") >= 12, printed
    assert "pretrain the vision tower on fresh scenes: complete" in printed
    assert "pretrain the tiny LLaVA (demo.jobs.pretrain_language): complete" in printed
    pd.testing.assert_frame_equal(first, again)
