"""demo.jobs.demo's language curriculum: each stage of `language_stages` is one demo.jobs.pretrain_language run that
starts from the previous stage's llava/ (not from the tower checkpoint again), complete stages are reused, and READ
loads the last stage. The runs themselves are faked here (demo/tests/integration/test_demo.py runs the real job)."""

from __future__ import annotations

import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demo.config import DemoConfig
from demo.jobs import demo as demo_job
from jobs._config import load_config

TOWER = "model.tiny.vision_checkpoint=/w/vision_tower.safetensors"


@pytest.fixture
def runs(monkeypatch):
    """Replaces demo.jobs.pretrain_language.main by a fake that records its argv and writes metrics.parquet (two
    evaluations; the second's `acc` is 0.5 + the run's index / 10) and the llava/ completion marker."""
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> list[dict]:
        calls.append(argv)
        out = pathlib.Path(next(a.removeprefix("out=") for a in argv if a.startswith("out=")))
        (out / "llava").mkdir(parents=True)
        rows = [{"step": 10, "seconds": 60.0, "acc": 0.2}, {"step": 20, "seconds": 150.0, "acc": 0.5 + len(calls) / 10}]
        pq.write_table(pa.Table.from_pylist(rows), out / "metrics.parquet")
        (out / "llava" / "config.json").write_text("{}")
        return rows

    monkeypatch.setattr(demo_job.pretrain_language, "main", fake_main)
    return calls


def _cfg(tmp_path, *stages: list[str]) -> DemoConfig:
    return DemoConfig(out=str(tmp_path), pretrain_language=True, language=["freeze_vision_tower=true"],
                      language_stages=[list(s) for s in stages])


def test_each_stage_starts_from_the_previous_one(tmp_path, runs):
    cfg = _cfg(tmp_path, ["objectives=[caption]"], ["objectives=[presence]", "steps=9"], ["objectives=[answers]"])
    loads = demo_job._pretrained_llava(cfg, str(tmp_path), ["prompt_format.answer_style=echo", TOWER])
    stage = [str(tmp_path / "language" / f"stage-{k}") for k in (1, 2, 3)]
    assert loads == [f"model.llava_path={stage[2]}/llava"]
    assert runs[0] == [f"out={stage[0]}", "num_cpus=2", "prompt_format.answer_style=echo", TOWER, "freeze_vision_tower=true",
                       "objectives=[caption]"]
    assert runs[1] == [f"out={stage[1]}", "num_cpus=2", "prompt_format.answer_style=echo", "freeze_vision_tower=true",
                       "objectives=[presence]", "steps=9", f"model.llava_path={stage[0]}/llava"]
    assert runs[2][-1] == f"model.llava_path={stage[1]}/llava" and TOWER not in runs[2]


def test_complete_stages_are_reused(tmp_path, runs, capsys):
    cfg = _cfg(tmp_path, ["objectives=[caption]"], ["objectives=[presence]"])
    demo_job._pretrained_llava(cfg, str(tmp_path), [])
    (tmp_path / "language" / "stage-2" / "llava" / "config.json").unlink()
    (tmp_path / "language" / "stage-2" / "llava").rmdir()
    demo_job._pretrained_llava(cfg, str(tmp_path), [])
    assert [a[0] for a in runs] == [f"out={tmp_path}/language/stage-{k}" for k in (1, 2, 2)]
    assert "stage 1/2 demo.jobs.pretrain_language): complete" in capsys.readouterr().out


def test_without_stages_one_run_writes_language(tmp_path, runs):
    cfg = DemoConfig(out=str(tmp_path), pretrain_language=True, language=["steps=5"])
    assert demo_job._pretrained_llava(cfg, str(tmp_path), [TOWER]) == [f"model.llava_path={tmp_path}/language/llava"]
    assert runs == [[f"out={tmp_path}/language", "num_cpus=2", TOWER, "steps=5"]]


def test_stage_lists_are_checked():
    with pytest.raises(ValueError, match="pretrain_language is false"):
        DemoConfig(language_stages=[["steps=5"]])
    with pytest.raises(ValueError, match="at least one key=value"):
        DemoConfig(pretrain_language=True, language_stages=[["steps=5"], []])
    cfg = load_config(DemoConfig, ["pretrain_language=true",
                                   'language_stages=[["objectives=[caption]",steps=5],[steps=6]]'])
    assert cfg.language_stages == [["objectives=[caption]", "steps=5"], ["steps=6"]]


def test_each_stage_last_figures_are_shown(tmp_path, runs, capsys):
    cfg = _cfg(tmp_path, ["objectives=[presence]"], ["objectives=[presence]"])
    demo_job._pretrained_llava(cfg, str(tmp_path), [])
    first = capsys.readouterr().out.split("held out at the end of each stage")[1]
    assert "stage-1    20     2.5" in first and "60.0" in first  # the last evaluation: step 20, 150 s, acc 0.6
    assert "stage-2    20     2.5" in first and "70.0" in first
    (tmp_path / "language" / "stage-1" / "metrics.parquet").unlink()  # a stage copied in without its metrics
    demo_job._pretrained_llava(cfg, str(tmp_path), [])
    second = capsys.readouterr().out.split("held out at the end of each stage")[1]
    assert "stage-1" not in second and "stage-2    20     2.5" in second and "70.0" in second
