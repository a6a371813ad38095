"""jobs.train on top of a READ release folder (the read-tiny oracle's checkpoint, as READ publishes it): the data
path feeds READ's own token ids and labels, the placeholder image row stays out of the loss, and the export keeps
READ's prompt format, so jobs.predict runs it with READ's prompts."""

from __future__ import annotations

import pathlib

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from jobs import predict as predict_job
from jobs.train import main
from model.build import load_export
from model.read_release import ReadReleaseTokenizer, load_read_release
from tests.fixtures.train import tiny_train_argv
from tests.read_tiny import ARCH, CKPT, CLIP, REF, skip_without_oracle

skip_without_oracle()

STEPS = 3


@pytest.fixture(scope="module")
def run_dir(local_ray, train_shards_root: pathlib.Path, tmp_path_factory) -> pathlib.Path:
    storage = tmp_path_factory.mktemp("release_runs")
    main(tiny_train_argv(train_shards_root, storage, "from-release", "num_workers=1", f"steps_per_epoch={STEPS}",
                         f"checkpoint_every={STEPS}", "log_every=1", f"model.read_checkpoint={CKPT}",
                         f"model.clip_path={CLIP}", f"model.sam_arch={ARCH}", "lr=1e-3"))
    return storage / "from-release"


def test_trains_from_a_release_folder_and_exports_reads_format(run_dir, tmp_path):
    table = pq.read_table(run_dir / "metrics.parquet")
    loss = table.column("loss").to_numpy()
    assert len(loss) == STEPS and np.isfinite(loss).all()
    assert np.isfinite(table.column("ce_loss").to_numpy()).all()
    model, tokenizer, _ = load_export(str(run_dir / "export"))
    assert isinstance(tokenizer, ReadReleaseTokenizer) and model.seg_token_id == 32000
    assert model.image_token_id == 32003 and model.image_row_is_placeholder
    release = load_read_release(CKPT, clip_path=str(CLIP), sam_arch=str(ARCH))
    trained = model.projector.fc2.weight if hasattr(model.projector, "fc2") else next(model.projector.parameters())
    initial = release.projector.fc2.weight if hasattr(release.projector, "fc2") else next(release.projector.parameters())
    assert not torch.equal(trained, initial)  # the [SEG] projector was trained
    image = REF / "images" / "a1.png"
    out = predict_job.main([f"checkpoint={run_dir / 'export'}", f"image={image}", "query=yellow disc",
                            f"out={tmp_path / 'p'}"]).to_pylist()[0]
    assert out["error"] == "" and out["prompt"].startswith("A chat between a curious human")
    assert "<im_start><image><im_end>\nWhat is yellow disc in this image?" in out["prompt"]
