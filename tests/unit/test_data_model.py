"""One forward + backward of the tiny READ model on a batch streamed from tiny shards (the loader/model contract)."""

from __future__ import annotations

import torch

from pipelines.data.config import DataConfig, StreamConfig
from pipelines.data.stream import ShardReadPolicy, build_loader
from pipelines.data.transform import ModelInputSpec


def test_tiny_model_forward_on_streamed_batch(tiny_shards):
    from model.build import build_read
    from model.config import ReadModelConfig

    model, tokenizer = build_read(ReadModelConfig(preset="tiny"))
    spec = ModelInputSpec.from_model(model)
    cfg = DataConfig(streams=[StreamConfig(name="refer", shards="::".join(tiny_shards))], num_workers=0,
                     batch_size=2, num_classes_per_sample=3, seed=5)
    loader = build_loader(cfg, ShardReadPolicy(seed=5), tokenizer=tokenizer, spec=spec)
    batch = next(iter(loader))
    assert batch.clip_images_I3CC.shape[-1] == model.clip_image_size
    assert batch.sam_images_I3SS.shape[-1] == model.sam_image_size
    image_id = model.image_token_id
    assert ((batch.input_ids_CT == image_id).sum(dim=1) == model.num_image_tokens).all()
    out = model(**batch.model_inputs())
    assert torch.isfinite(out.loss) and out.loss.requires_grad
    assert [m.shape for m in out.mask_logits] == [m.shape for m in batch.masks_C]
    out.loss.backward()


def test_echo_style_reaches_the_loader_from_the_prompt_format(tiny_shards):
    import re

    from model.build import build_read
    from model.config import ReadModelConfig
    from model.prompt_format import PromptFormat
    from pipelines.data import templates

    model, tokenizer = build_read(ReadModelConfig(preset="tiny"))
    spec = ModelInputSpec.from_model(model, PromptFormat(answer_style="echo"))
    assert spec.answer_style == "echo"
    cfg = DataConfig(streams=[StreamConfig(name="refer", shards="::".join(tiny_shards))], num_workers=0,
                     batch_size=2, num_classes_per_sample=3, seed=5)
    batch = next(iter(build_loader(cfg, ShardReadPolicy(seed=5), tokenizer=tokenizer, spec=spec)))
    echo = [re.escape(t).replace(re.escape("{class_name}"), ".+") for t in templates.ECHO_ANSWERS]
    answers = [tokenizer.decode(ids[labels != -100]).strip() for ids, labels in
               zip(batch.input_ids_CT, batch.labels_CT)]
    with_seg = [a for a in answers if "[SEG]" in a]
    assert with_seg
    for answer in with_seg:  # every short true query is answered by naming it (none of READ's plain answers)
        assert any(re.fullmatch(p + "</s>", answer) for p in echo), answer
