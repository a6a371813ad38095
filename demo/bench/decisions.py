"""Greedy-decision benchmark: `demo.read_helpers.greedy_token_ids` (batched, KV cache) against re-running the whole
prefix for every new token, the form `greedy_says_seg` had before.

Data: the language warm start's held-out segmentation conversations (`held_out_pointing`, 384 of them; --quick: 64),
cut at "ASSISTANT:", decoded greedily up to 24 new tokens by the tiny preset's random READ on one thread, its LM head
sharpened so that the answers differ from row to row. Goal: the same tokens, and the cached form >= 5x faster.
Usage: python -m demo.bench.decisions [--quick]
"""

from __future__ import annotations

import sys
import time

import torch

from demo.language import LanguagePretrainConfig
from demo.language.decisions import question_prompts
from demo.language.pointing import PointingSampler
from demo.language.pretrain import held_out_pointing
from demo.read_helpers import greedy_token_ids
from model.build import build_read
from model.read import READ
from pipelines.data.tokenize import left_pad

_MAX_NEW_TOKENS = 24
_GOAL_SPEEDUP = 5.0


@torch.no_grad()
def recompute_greedy_ids(model: READ, clip_images, input_ids, attention_mask, max_new_tokens: int) -> torch.Tensor:
    """The reference: one full LLM pass over prompt + generated tokens per new token, no cache: (C, G)."""
    eos, image_index = model.tokenizer.eos_token_id, torch.arange(input_ids.shape[0])
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
    generated = []
    for _ in range(max_new_tokens):
        hidden_CTD = model.hidden_states(clip_images=clip_images, image_index=image_index, input_ids=input_ids,
                                         attention_mask=attention_mask)
        logits_CV = model.llava.lm_head(hidden_CTD[:, -1])
        logits_CV[:, model.image_token_id] = float("-inf")
        next_C = logits_CV.argmax(-1).masked_fill(done, eos)
        generated.append(next_C)
        done |= next_C == eos
        if bool(done.all()):
            break
        input_ids = torch.cat([input_ids, next_C[:, None]], 1)
        attention_mask = torch.cat([attention_mask, torch.ones_like(next_C)[:, None]], 1)
    return torch.stack(generated, 1)


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LanguagePretrainConfig(eval_questions=64 if quick else 384)
    model, tokenizer = build_read(cfg.model)
    model.eval()
    with torch.no_grad():
        model.llava.lm_head.weight.normal_(0, 2.0)
    sampler = PointingSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens, clip_size=model.clip_image_size)
    held = held_out_pointing(cfg, sampler, cfg.false_premise_rate)
    input_ids, attention_mask = left_pad(question_prompts(held), tokenizer.pad_token_id)
    n = input_ids.shape[0]

    start = time.perf_counter()
    cached = greedy_token_ids(model, clip_images=held.pixels, image_index=torch.arange(n), input_ids=input_ids,
                              attention_mask=attention_mask, max_new_tokens=_MAX_NEW_TOKENS)
    t_cached = time.perf_counter() - start
    start = time.perf_counter()
    direct = recompute_greedy_ids(model, held.pixels, input_ids, attention_mask, _MAX_NEW_TOKENS)
    t_direct = time.perf_counter() - start

    same = torch.equal(cached, direct)
    speedup = t_direct / t_cached
    return [
        {"bench": "decisions", "metric": f"greedy answers ({n} prompts, {cached.shape[1]} new tokens), KV cache",
         "value": t_cached, "unit": "s", "goal": ""},
        {"bench": "decisions", "metric": "greedy answers, whole prefix per token", "value": t_direct, "unit": "s",
         "goal": ""},
        {"bench": "decisions", "metric": "speed-up whole prefix/cached", "value": speedup, "unit": "x",
         "goal": f">= {_GOAL_SPEEDUP:g}x"},
        {"bench": "decisions", "metric": "tokens identical to the reference", "value": float(same), "unit": "bool",
         "goal": "1"},
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for row in run(quick="--quick" in argv):
        print(f"{row['metric']:<60} {row['value']:>10.4g} {row['unit']:<5} {row['goal']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
