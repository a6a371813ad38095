"""bench.batched_decode with tiny arguments: both decoders give identical tokens and masks, the figures are written,
and its comparison does notice a different token or mask."""

from __future__ import annotations

import dataclasses
import json

import torch

from bench import batched_decode


def test_bench_runs_and_writes_identical_figures(tmp_path):
    threads = torch.get_num_threads()
    result = batched_decode.main(["--queries", "6", "--max-new-tokens", "6", "--batch-size", "4", "--images", "2",
                                  "--threads", "1", "--out", str(tmp_path)])
    assert torch.get_num_threads() == threads  # the bench restores the thread count
    written = json.loads((tmp_path / "batched_decode_never_q6_b4_n6_t1.json").read_text())
    assert result["path"] == str(tmp_path / "batched_decode_never_q6_b4_n6_t1.json")
    assert written["identical"] is True and written["machine"]["device"] == "cpu"
    (run,) = written["runs"]
    assert run["identical"] and run["queries_with_other_tokens"] == run["queries_with_other_masks"] == 0
    assert run["mask_pixels_differing"] == 0
    assert run["mean_new_tokens"] == 6.0 and run["ended_at_eos"] == 0  # --stop never: the whole budget, both modes
    assert run["seg_tokens"] > 0  # masks were decoded and compared
    assert run["single_queries_per_s"] > 0 and run["batched_queries_per_s"] > 0
    assert abs(run["speedup"] - run["batched_queries_per_s"] / run["single_queries_per_s"]) < 1e-9
    assert set(run["breakdown"]) == {"single_ms_per_query", "batched_ms_per_query"}
    assert {"llm_prefill", "llm_steps", "masks", "total"} <= set(run["breakdown"]["batched_ms_per_query"])


def test_compare_notices_other_tokens_and_masks():
    model, tokenizer = batched_decode.build_model(0, "never")
    images = batched_decode.make_images(model, 2, 0)
    queries = batched_decode.make_queries(model, tokenizer, 4)
    singles = batched_decode.one_at_a_time(model, images, queries, 6)
    many = batched_decode.batched(model, images, queries, 6, 4, tokenizer.pad_token_id)
    assert batched_decode.compare(singles, many)["identical"]
    # The decoding methods restore the model: no wrapper left after a breakdown.
    batched_decode.breakdown(model, lambda: batched_decode.one_at_a_time(model, images, queries[:1], 2))
    assert "embed_inputs" not in model.__dict__ and "_segment_from_hidden" not in model.__dict__
    other_tokens = [dataclasses.replace(many[0], token_ids=many[0].token_ids[:-1] + [7]), *many[1:]]
    assert batched_decode.compare(singles, other_tokens)["queries_with_other_tokens"] == 1
    with_seg = next(i for i, o in enumerate(many) if o.mask_logits.shape[0])
    flipped = dataclasses.replace(many[with_seg], mask_logits=-many[with_seg].mask_logits)
    other_masks = [flipped if i == with_seg else o for i, o in enumerate(many)]
    verdict = batched_decode.compare(singles, other_masks)
    assert not verdict["identical"] and verdict["queries_with_other_masks"] == 1
