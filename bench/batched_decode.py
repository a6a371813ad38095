"""Batched decoding (`READ.generate_batch`: left padding, KV cache, per-row stop, SAM once per image) against
one-at-a-time decoding (`READ.generate`, one query per call) on the tiny preset, on the CPU, in float32.

Data: N generation prompts (the evaluation's templates, short and sentence queries) on a few random images, query q
on image q % images, decoded greedily by the tiny preset's random READ. As in `demo.bench.decisions`, the LM head is
sharpened (weights ~ N(0, 2)) so that the answers differ from row to row, and [SEG] is made likely enough that masks
are decoded. By default `</s>` is made impossible (`--stop never`), so that every query generates exactly
`max_new_tokens` tokens in both modes: a random model's natural stopping point says nothing about a trained one's,
and the batched mode pays for its longest row. `--stop natural` keeps the model's own `</s>`.

Goal (issue 38): the same tokens and the same binary masks, and the batched form >= 5x the queries/s.

    python -m bench.batched_decode [--queries 64] [--max-new-tokens 16] [--batch-size 16] [--images 4] [--seed 0]
                                   [--threads 1 2] [--stop never|natural] [--seg-bias 45] [--repeats 1]
                                   [--no-breakdown] [--out bench/out/batched_decode]

Besides the two rates it prints where each mode's time goes per query (`Breakdown`: CLIP, LLM prefill, LLM steps,
[SEG] -> masks, the rest), measured in a separate pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.build import build_read
from model.config import ReadModelConfig
from model.read import READ, GenerateOutput
from pipelines.data.conversation import eval_prompt
from pipelines.data.image import clip_preprocess, sam_preprocess
from pipelines.data.tokenize import left_pad, tokenize

OUT = Path(__file__).resolve().parent / "out" / "batched_decode"
GOAL_SPEEDUP = 5.0
QUERIES = ["the red circle", "the big blue square on the left", "the person in the middle", "a dog",
           "What would you sit on in this picture?", "Which object can hold water?",
           "the small green triangle next to the door", "What is used to tell the time here?"]
SIZES = [(40, 56), (48, 32), (64, 64), (30, 50), (56, 40), (36, 60)]


@dataclass
class Image:
    clip_3CC: torch.Tensor
    sam_3SS: torch.Tensor
    resized: tuple[int, int]
    original: tuple[int, int]


def make_images(model: READ, count: int, seed: int) -> list[Image]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        h, w = SIZES[k % len(SIZES)]
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        sam, resized = sam_preprocess(rgb, model.sam_image_size)
        out.append(Image(clip_preprocess(rgb, model.clip_image_size), sam, tuple(resized), (h, w)))
    return out


def make_queries(model: READ, tokenizer, count: int) -> list[torch.Tensor]:
    """`count` generation prompts (1-D ids, `<image>` expanded), the templates cycled."""
    ids = []
    for q in range(count):
        text = QUERIES[q % len(QUERIES)]
        prompt = eval_prompt(text, is_sentence=text.endswith("?"), with_answer=False)
        ids.append(tokenize(prompt, tokenizer, model.num_image_tokens)[0])
    return ids


def build_model(seed: int, stop: str, seg_bias: float = 45.0) -> tuple[READ, object]:
    """The tiny preset's random READ, eval mode, LM head sharpened, [SEG] made likely, `</s>` off (stop=never)."""
    torch.manual_seed(seed)
    model, tokenizer = build_read(ReadModelConfig(preset="tiny"))
    model.eval()
    with torch.no_grad():
        head = model.llava.lm_head
        head.weight.normal_(0, 2.0)
        bias = torch.zeros(head.out_features)
        # [SEG] favoured enough that it is generated now and then (about once per query at the default), each one
        # decoding a mask, as a trained model answers "Sure, it is [SEG]."
        bias[model.seg_token_id] = seg_bias
        if stop == "never":
            bias[tokenizer.eos_token_id] = -1e4
        head.bias = torch.nn.Parameter(bias)
    return model, tokenizer


def one_at_a_time(model: READ, images: list[Image], queries: list[torch.Tensor], max_new_tokens: int
                  ) -> list[GenerateOutput]:
    out = []
    for q, ids in enumerate(queries):
        im = images[q % len(images)]
        out.append(model.generate(clip_image=im.clip_3CC, sam_image=im.sam_3SS, resized_size=im.resized,
                                  original_size=im.original, input_ids=ids[None], max_new_tokens=max_new_tokens))
    return out


def batched(model: READ, images: list[Image], queries: list[torch.Tensor], max_new_tokens: int, batch_size: int,
            pad_token_id: int) -> list[GenerateOutput]:
    """Chunks of `batch_size` queries; each chunk passes only the images it uses (each once)."""
    out = []
    for start in range(0, len(queries), batch_size):
        chunk = list(range(start, min(start + batch_size, len(queries))))
        used = sorted({q % len(images) for q in chunk})
        slot = {i: k for k, i in enumerate(used)}
        input_ids, mask = left_pad([queries[q] for q in chunk], pad_token_id)
        out += model.generate_batch(
            clip_images=torch.stack([images[i].clip_3CC for i in used]),
            sam_images=torch.stack([images[i].sam_3SS for i in used]),
            resized_sizes=[images[i].resized for i in used], original_sizes=[images[i].original for i in used],
            image_index=torch.tensor([slot[q % len(images)] for q in chunk]), input_ids=input_ids,
            attention_mask=mask, max_new_tokens=max_new_tokens)
    return out


class Breakdown:
    """Wall time per part of a decode, through forward hooks and wrappers on one model (`with Breakdown(model)`):
    clip_embed (CLIP + token embeddings), llm_prefill (the prompt's LLM pass), llm_steps (one-token passes),
    masks ([SEG] states -> SasP points -> SAM encoder and decoder, per-query outputs). Timed in a separate pass:
    the headline figures run without hooks."""

    PARTS = ("clip_embed", "llm_prefill", "llm_steps", "masks")

    def __init__(self, model: READ) -> None:
        self.model = model
        self.seconds = dict.fromkeys(self.PARTS, 0.0)
        self._began = 0.0
        self._handles: list = []

    def _wrap(self, name: str, part: str) -> None:
        inner = getattr(self.model, name)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - began

        setattr(self.model, name, timed)  # an instance attribute shadowing the method; removed on exit

    def __enter__(self) -> "Breakdown":
        self._wrap("embed_inputs", "clip_embed")
        self._wrap("_segment_from_hidden", "masks")
        lm = self.model.llava.model.language_model

        def before(_module, _args, _kwargs):
            self._began = time.perf_counter()

        def after(_module, _args, kwargs, _out):
            part = "llm_prefill" if kwargs["inputs_embeds"].shape[1] > 1 else "llm_steps"
            self.seconds[part] += time.perf_counter() - self._began

        self._handles = [lm.register_forward_pre_hook(before, with_kwargs=True),
                         lm.register_forward_hook(after, with_kwargs=True)]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        for name in ("embed_inputs", "_segment_from_hidden"):
            self.model.__dict__.pop(name, None)

    def per_query_ms(self, total_s: float, queries: int) -> dict[str, float]:
        out = {part: 1e3 * s / queries for part, s in self.seconds.items()}
        out["other"] = 1e3 * (total_s - sum(self.seconds.values())) / queries
        out["total"] = 1e3 * total_s / queries
        return out


def breakdown(model: READ, fn) -> dict[str, float]:
    """ms per query of each part of one untimed-for-the-headline run of `fn() -> outputs`."""
    with Breakdown(model) as parts:
        began = time.perf_counter()
        outputs = fn()
        total = time.perf_counter() - began
    return parts.per_query_ms(total, len(outputs))


def compare(singles: list[GenerateOutput], many: list[GenerateOutput]) -> dict:
    """Per-query differences: tokens, `ended`, mask shapes, binary masks (logits > 0), largest |logit| gap."""
    token_diffs = mask_diffs = pixel_diffs = 0
    max_logit_gap = 0.0
    for one, other in zip(singles, many, strict=True):
        if one.token_ids != other.token_ids or one.ended != other.ended:
            token_diffs += 1
            continue
        if one.mask_logits.shape != other.mask_logits.shape:
            mask_diffs += 1
            continue
        different = int(((one.mask_logits > 0) != (other.mask_logits > 0)).sum())
        pixel_diffs += different
        mask_diffs += int(different > 0)
        if one.mask_logits.numel():
            max_logit_gap = max(max_logit_gap, float((one.mask_logits - other.mask_logits).abs().max()))
    return {"queries_with_other_tokens": token_diffs, "queries_with_other_masks": mask_diffs,
            "mask_pixels_differing": pixel_diffs, "max_mask_logit_gap": max_logit_gap,
            "identical": token_diffs == 0 and mask_diffs == 0}


def measure(*, queries: int, max_new_tokens: int, batch_size: int, images: int, seed: int, threads: int,
            stop: str, seg_bias: float = 45.0, repeats: int = 1, with_breakdown: bool = True) -> dict:
    """Figures of one thread count: both modes timed (best of `repeats`, after a warm-up of each), outputs compared."""
    torch.set_num_threads(threads)
    model, tokenizer = build_model(seed, stop, seg_bias)
    imgs = make_images(model, images, seed)
    ids = make_queries(model, tokenizer, queries)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    batch_size = batch_size or queries
    one_at_a_time(model, imgs, ids[:2], max_new_tokens)  # warm-up: first-call allocations, kernels
    batched(model, imgs, ids[: min(len(ids), batch_size)], max_new_tokens, batch_size, pad)
    t_single = t_batched = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        singles = one_at_a_time(model, imgs, ids, max_new_tokens)
        t_single = min(t_single, time.perf_counter() - began)
        began = time.perf_counter()
        many = batched(model, imgs, ids, max_new_tokens, batch_size, pad)
        t_batched = min(t_batched, time.perf_counter() - began)
    generated = [len(o.token_ids) for o in singles]
    parts = {}
    if with_breakdown:
        parts = {"single_ms_per_query": breakdown(model, lambda: one_at_a_time(model, imgs, ids, max_new_tokens)),
                 "batched_ms_per_query": breakdown(model, lambda: batched(model, imgs, ids, max_new_tokens,
                                                                          batch_size, pad))}
    return {
        "threads": threads, "queries": queries, "batch_size": batch_size, "images": images,
        "max_new_tokens": max_new_tokens, "stop": stop, "seed": seed, "seg_bias": seg_bias,
        "single_s": t_single, "batched_s": t_batched,
        "single_queries_per_s": queries / t_single, "batched_queries_per_s": queries / t_batched,
        "speedup": t_single / t_batched,
        "mean_new_tokens": float(np.mean(generated)), "ended_at_eos": sum(o.ended for o in singles),
        "seg_tokens": sum(int(o.mask_logits.shape[0]) for o in singles),
        **compare(singles, many),
        "breakdown": parts,
    }


def machine() -> dict:
    """Where the figures come from; the load average says whether something else was running."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average_1_5_15": list(os.getloadavg()), "torch": torch.__version__,
            "python": platform.python_version(), "device": "cpu"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.batched_decode", description=__doc__.split("\n\n")[0])
    p.add_argument("--queries", type=int, default=64, help="generation queries (default 64)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="generation budget per query (default 16, as "
                   "the evaluation's)")
    p.add_argument("--batch-size", type=int, default=16, help="queries per generate_batch call (default 16, the evaluation's "
                   "max_queries_per_forward; 0: all at once)")
    p.add_argument("--images", type=int, default=4, help="distinct images; query q is on image q %% images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op thread counts to run")
    p.add_argument("--stop", choices=("never", "natural"), default="never",
                   help="never: </s> made impossible, every query generates max_new_tokens (default); natural: the "
                        "random model's own </s>")
    p.add_argument("--seg-bias", type=float, default=45.0,
                   help="LM-head bias of [SEG] (default 45: about one [SEG] per query; 0: almost none, no SAM work)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per mode; the best is kept")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-part timing pass (hooks)")
    p.add_argument("--out", type=Path, default=OUT, help="folder of the JSON of figures")
    args = p.parse_args(argv)
    for key in ("queries", "max_new_tokens", "images", "repeats"):
        if getattr(args, key) <= 0:
            p.error(f"--{key.replace('_', '-')} must be > 0")
    if args.batch_size < 0 or min(args.threads) <= 0:
        p.error("--batch-size must be >= 0 and --threads > 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run, print and write `<out>/batched_decode_<stop>_q<N>_b<B>_n<max_new_tokens>_t<threads>.json`; returns
    what was written, with its "path"."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    before = torch.get_num_threads()
    try:
        runs = [measure(queries=args.queries, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                        images=args.images, seed=args.seed, threads=t, stop=args.stop, seg_bias=args.seg_bias,
                        repeats=args.repeats, with_breakdown=not args.no_breakdown)
                for t in args.threads]
    finally:
        torch.set_num_threads(before)
    for r in runs:
        print(f"[bench.batched_decode] {r['threads']} thread(s), {r['queries']} queries x {r['mean_new_tokens']:.1f} "
              f"new tokens, {r['seg_tokens']} [SEG]s, batch {r['batch_size']}: one-at-a-time "
              f"{r['single_queries_per_s']:.2f} q/s, batched {r['batched_queries_per_s']:.2f} q/s -> "
              f"{r['speedup']:.2f}x (goal >= {GOAL_SPEEDUP:g}x); identical outputs: {r['identical']}", flush=True)
        for mode, parts in r["breakdown"].items():
            print(f"[bench.batched_decode]   {mode}: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()),
                  flush=True)
    result = {"bench": "batched_decode", "preset": "tiny", "dtype": "float32", "goal_speedup": GOAL_SPEEDUP,
              "machine": machine(), "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "runs": runs, "identical": all(r["identical"] for r in runs)}
    args.out.mkdir(parents=True, exist_ok=True)
    name = (f"batched_decode_{args.stop}_q{args.queries}_b{args.batch_size}_n{args.max_new_tokens}"
            f"_t{'-'.join(map(str, args.threads))}.json")
    path = args.out / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    result["path"] = str(path)
    print(f"[bench.batched_decode] wrote {path}", flush=True)
    return result


def run(quick: bool) -> list[dict]:
    """`bench.run_all` rows: one thread, 16 queries (quick) or 64."""
    result = main(["--queries", "16" if quick else "64", "--threads", "1"])
    r = result["runs"][0]
    return [
        {"bench": "batched_decode", "metric": f"one-at-a-time generate, tiny, 1 thread ({r['queries']} queries)",
         "value": r["single_queries_per_s"], "unit": "queries/s", "goal": ""},
        {"bench": "batched_decode", "metric": f"generate_batch (batch {r['batch_size']})",
         "value": r["batched_queries_per_s"], "unit": "queries/s", "goal": ""},
        {"bench": "batched_decode", "metric": "speed-up batched/one-at-a-time", "value": r["speedup"], "unit": "x",
         "goal": f">= {GOAL_SPEEDUP:g}x"},
        {"bench": "batched_decode", "metric": "tokens and binary masks identical", "value": float(r["identical"]),
         "unit": "bool", "goal": "1"},
    ]


if __name__ == "__main__":
    main()
