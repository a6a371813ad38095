"""LLaVA-1.5 in the original layout (liuhaotian/llava-v1.5-7b + CLIP + sam_vit_h_4b8939.pth) as the model READ trains
from, via `build_read(model.llava_path=<folder>, model.sam_checkpoint=<.pth>, model.clip_path=...)`.

The base is written by the test from the read-tiny oracle's release the way the public files are laid out: the LLaVA
folder without SAM, without the [SEG] projector, with LLaMA's 32,000-row vocabulary and no added tokens; SAM as a
segment-anything state dict. READ's training adds `[SEG]`, `<im_start>`, `<im_end>` (32000-32002), grows the
embeddings with N(0, 0.02) rows and wraps `<image>`: the ids of READ's own training conversations
(golden/train_tokens.json) must come out token for token.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from model.build import build_read, load_export, save_export
from model.config import ReadModelConfig
from model.read_release import read_release_state_dict
from pipelines.data.tokenize import tokenize
from tests.read_tiny import ARCH, CKPT, CLIP, REF, skip_without_oracle

skip_without_oracle()
VOCAB = 32000


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    llava, sam = root / "llava-v1.5-tiny", root / "sam_tiny.pth"
    llava.mkdir()
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(CKPT / name, llava / name)
    config = json.loads((CKPT / "config.json").read_text())
    config.update(vocab_size=VOCAB, mm_use_im_start_end=False, architectures=["LlavaLlamaForCausalLM"])
    config.pop("out_dim", None)
    (llava / "config.json").write_text(json.dumps(config))
    state = read_release_state_dict(CKPT)
    base_state = {k: v for k, v in state.items()
                  if not k.startswith(("model.visual_model.", "model.text_hidden_fcs."))}
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        base_state[key] = base_state[key][:VOCAB].clone()
    torch.save(base_state, llava / "pytorch_model.bin")
    torch.save({k.removeprefix("model.visual_model."): v for k, v in state.items()
                if k.startswith("model.visual_model.")}, sam)
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(llava_path=str(llava), sam_checkpoint=str(sam),
                                                  clip_path=str(CLIP)))
    return {"llava": llava, "sam": sam, "state": state, "model": model, "tokenizer": tokenizer}


def test_tokens_are_reads(base):
    tokenizer = base["tokenizer"]
    assert [tokenizer.token_to_id(t) for t in ("[SEG]", "<im_start>", "<im_end>")] == [32000, 32001, 32002]
    assert base["model"].seg_token_id == 32000 and base["model"].image_token_id == 32003
    golden = json.loads((REF / "golden" / "train_tokens.json").read_text())["samples"]
    for sample in golden.values():
        for conversation, ids in zip(sample["conversation_list"], sample["input_ids"]):
            ours = tokenizer.encode(conversation)
            assert ours == [i for i in ids if i != tokenizer.pad_id][: len(ours)]


def test_weights_and_new_rows(base):
    model, state = base["model"], base["state"]
    embed = model.llava.model.language_model.embed_tokens.weight
    head = model.llava.lm_head.weight
    torch.testing.assert_close(embed[:VOCAB], state["model.embed_tokens.weight"][:VOCAB].float())
    new = torch.cat([embed[VOCAB:32003], head[VOCAB:32003]])
    assert 0.01 < float(new.std()) < 0.03 and abs(float(new.mean())) < 0.01  # N(0, 0.02), 384 draws
    assert not embed[32003].any()  # the image placeholder row
    sam = model.sam.state_dict()
    for key, value in state.items():
        if key.startswith("model.visual_model."):
            torch.testing.assert_close(sam[key.removeprefix("model.visual_model.")], value.float())
    released = state["model.text_hidden_fcs.0.0.weight"].float()  # the [SEG] projector starts fresh, not READ's
    first = next(model.projector.parameters())
    assert first.shape == released.shape and not torch.allclose(first, released)


def test_training_conversation_and_export(base, tmp_path):
    model, tokenizer = base["model"], base["tokenizer"]
    prompt = tokenizer.build_prompt("llava_v1", [("What is the cat in this image? Please output segmentation "
                                                  "mask.", "Sure, the segmentation result is [SEG].")])
    ids, labels = tokenize(prompt, tokenizer, model.num_image_tokens)
    assert int((ids == 32000).sum()) == 1 and int((ids == 32003).sum()) == 576
    assert tokenizer.convert_ids_to_tokens([int(ids[labels != -100][0])]) == ["▁Sure"]
    save_export(model, tokenizer, model.cfg, str(tmp_path / "export"))
    meta = json.loads((tmp_path / "export" / "read_config.json").read_text())
    assert meta["added_rows"]["tokens"] == {"[SEG]": 32000, "<im_start>": 32001, "<im_end>": 32002}
    again, tok, _ = load_export(str(tmp_path / "export"))
    assert tok.token_to_id("[SEG]") == 32000 and tok.encode(prompt) == tokenizer.encode(prompt)


def test_errors_name_the_fix(base, tmp_path):
    with pytest.raises(ValueError, match="model.sam_checkpoint"):
        build_read(ReadModelConfig(llava_path=str(base["llava"]), clip_path=str(CLIP)))
    with pytest.raises(ValueError, match="model.read_checkpoint"):
        build_read(ReadModelConfig(llava_path=str(CKPT), sam_checkpoint=str(base["sam"]), clip_path=str(CLIP),
                                   sam_arch=str(ARCH)))
