"""Pretrain the tiny preset's LLaVA: the stand-in for LLaVA's own pretraining.

READ starts from LLaVA-1.5, which already answers questions about an image and whose states already match a query to
the patches it names; the tiny preset's LLaVA starts random, and inside READ's training it does not learn to look a
query word up in the image (docs/demo_grounding.md, "Why See stays at 50"). Here the whole tiny LLaVA (tower,
projector, LLM) learns, on scenes drawn afresh every step, any of `cfg.objectives` (summed):
    caption   LLaVA's first stage: "Describe the shapes in this image." answered with the objects from left to right
              (demo/language/captions.py);
    presence  one answer token, yes or no, after "Is there {phrase} in this image?";
    lookup    one answer token, the colour, after "What colour is the {shape}?" (demo/language/lookups.py);
    pointing  in READ's own segmentation conversations, the [SEG] similarity map (what SasP turns into SAM's points)
              puts its mass on the queried object's patches (demo/language/pointing.py);
    answers   READ's next-token CE of those conversations' answers (false premises answered with corrections).
The folder it writes is a Hugging Face LLaVA that READ's training loads with `model.llava_path`, as it loads
LLaVA-1.5. It never sees a dataset image.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from demo import read_helpers
from demo.language.captions import CaptionBatch, CaptionSampler, caption_accuracy, caption_logits, word_ids
from demo.language.config import TARGETS, LanguagePretrainConfig, unreached
from demo.language.decisions import decision_metrics, greedy_says_seg
from demo.language.lookups import LookupBatch, LookupSampler
from demo.language.pointing import PointingBatch, PointingSampler
from demo.language.questions import QUESTION, presence_phrase
from demo.language.restarts import attempt_streams, stalled
from demo.losses import pointing_ce
from model.build import build_read
from model.losses import next_token_ce
from model.read import READ
from pipelines.data.conversation import build_prompt
from pipelines.data.image import clip_preprocess
from pipelines.data.templates import IMAGE_TOKEN
from pipelines.data.tokenize import left_pad, tokenize
from pipelines.synth.scene import sample_scene

ANSWERS = ("yes", "no")


@dataclass
class QuestionBatch:
    """N questions, left-padded: pixels (N, 3, S, S), input_ids / attention_mask (N, T), yes (N,) bool, kinds."""

    pixels: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    yes: torch.Tensor
    kinds: list[str]


class QuestionSampler:
    """Draws fresh scenes and one balanced presence question per scene, tokenised for the tiny LLaVA."""

    def __init__(self, cfg: LanguagePretrainConfig, tokenizer, *, num_image_tokens: int, clip_size: int) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.num_image_tokens, self.clip_size = num_image_tokens, clip_size
        self._ids: dict[str, torch.Tensor] = {}

    def batch(self, scene_rng: np.random.Generator, rng: random.Random, n: int) -> QuestionBatch:
        cfg = self.cfg
        pixels, ids, yes, kinds = [], [], [], []
        for i in range(n):
            scene = sample_scene(scene_rng, **cfg.scene_options())
            kind, present = cfg.kinds[i % len(cfg.kinds)], rng.random() < 0.5
            pixels.append(clip_preprocess(scene.rgb, self.clip_size))
            ids.append(self._question_ids(QUESTION.format(phrase=presence_phrase(rng, scene.objects, kind, present))))
            yes.append(present)
            kinds.append(kind)
        input_ids, attention_mask = left_pad(ids, self.tokenizer.pad_token_id)
        return QuestionBatch(torch.stack(pixels), input_ids, attention_mask, torch.tensor(yes), kinds)

    def _question_ids(self, question: str) -> torch.Tensor:
        if question not in self._ids:
            prompt = build_prompt([(IMAGE_TOKEN + "\n" + question, None)])
            self._ids[question] = tokenize(prompt, self.tokenizer, self.num_image_tokens)[0]
        return self._ids[question]


def answer_ids(tokenizer) -> tuple[int, int]:
    """First token ids of "yes" and "no" (they must differ: the answer is read from that one token)."""
    yes, no = (tokenizer(a, add_special_tokens=False).input_ids[0] for a in ANSWERS)
    if yes == no:
        raise ValueError(f"the tokenizer starts {ANSWERS} with the same token; cannot read a yes/no answer")
    return yes, no


def next_token_logits(llava: nn.Module, batch: QuestionBatch | LookupBatch) -> torch.Tensor:
    """The logits of the token after each question (the answer's first token): (N, vocabulary)."""
    out = llava(input_ids=batch.input_ids, pixel_values=batch.pixels, attention_mask=batch.attention_mask,
                use_cache=False, logits_to_keep=1)
    return out.logits[:, -1]


def yes_no_logits(llava: nn.Module, batch: QuestionBatch, yes_no: tuple[int, int]) -> torch.Tensor:
    """The next-token logits of (yes, no) after each question: (N, 2)."""
    return next_token_logits(llava, batch)[:, list(yes_no)]


@dataclass
class Objectives:
    """The samplers of `cfg.objectives` (None where an objective is not trained) and their held-out sets, drawn once
    per run: every attempt of a run trains on its own draw and is scored on the same held-out sets."""

    cfg: LanguagePretrainConfig
    model: READ
    captions: CaptionSampler | None
    questions: QuestionSampler | None
    lookups: LookupSampler | None
    pointing: PointingSampler | None
    fp_rate: float
    """Share of false premises among the conversations (0 without "answers")."""
    yes_no: tuple[int, int]
    held_questions: QuestionBatch | None
    held_lookups: LookupBatch | None
    held_pointing: PointingBatch | None
    held_captions: CaptionBatch | None
    words: dict
    scale: float
    """The pointing CE's temperature, sqrt(D) of the LLM."""

    @classmethod
    def build(cls, cfg: LanguagePretrainConfig, model: READ, tokenizer) -> Objectives:
        sizes = {"num_image_tokens": model.num_image_tokens, "clip_size": model.clip_image_size}
        captions = CaptionSampler(cfg, tokenizer, **sizes) if "caption" in cfg.objectives else None
        questions = QuestionSampler(cfg, tokenizer, **sizes) if "presence" in cfg.objectives else None
        lookups = LookupSampler(cfg, tokenizer, **sizes) if "lookup" in cfg.objectives else None
        conversational = {"pointing", "answers"} & set(cfg.objectives)
        pointing = PointingSampler(cfg, tokenizer, **sizes) if conversational else None
        fp_rate = cfg.false_premise_rate if "answers" in cfg.objectives else 0.0
        return cls(cfg=cfg, model=model, captions=captions, questions=questions, lookups=lookups, pointing=pointing,
                   fp_rate=fp_rate, yes_no=answer_ids(tokenizer) if questions else (0, 0),
                   held_questions=held_out_batch(cfg, questions) if questions else None,
                   held_lookups=held_out_lookups(cfg, lookups) if lookups else None,
                   held_pointing=held_out_pointing(cfg, pointing, fp_rate) if pointing else None,
                   held_captions=held_out_captions(cfg, captions) if captions else None,
                   words=word_ids(tokenizer) if captions else {},
                   scale=math.sqrt(model.llava.config.text_config.hidden_size))

    def losses(self, streams: dict) -> dict[str, torch.Tensor]:
        """One training step's loss per objective, on `cfg.batch_size` fresh scenes each from `streams`
        (`attempt_streams`)."""
        cfg, llava, parts = self.cfg, self.model.llava, {}
        if self.captions:
            captioned = self.captions.batch(streams["caption"][0], cfg.batch_size)
            parts["caption"] = next_token_ce(caption_logits(llava, captioned), captioned.labels)
        if self.questions:
            batch = self.questions.batch(*streams["presence"], cfg.batch_size)
            parts["presence"] = nn.functional.cross_entropy(next_token_logits(llava, batch),
                                                            torch.where(batch.yes, *self.yes_no))
        if self.lookups:
            looked = self.lookups.batch(*streams["lookup"], cfg.batch_size)
            parts["lookup"] = nn.functional.cross_entropy(next_token_logits(llava, looked), looked.answer)
        if self.pointing:
            batch = self.pointing.batch(*streams["pointing"], cfg.batch_size, self.fp_rate)
            parts |= conversation_losses(cfg, self.model, batch, self.scale)
        return parts

    def held_out(self) -> dict[str, float]:
        """The held-out metrics of every objective trained."""
        llava, row = self.model.llava, {}
        if self.held_captions is not None:
            row |= caption_accuracy(llava, self.held_captions, self.words)
        if self.held_questions is not None:
            row |= accuracy(llava, self.held_questions, self.yes_no)
        if self.held_lookups is not None:
            row |= lookup_accuracy(llava, self.held_lookups, self.lookups.answer_ids)
        if self.held_pointing is not None and "pointing" in self.cfg.objectives:
            row |= pointing_accuracy(self.model, self.held_pointing)
        if self.held_pointing is not None and "answers" in self.cfg.objectives:
            row["answer_ce"] = answer_ce(self.model, self.held_pointing)
            row |= decision_metrics(greedy_says_seg(self.model, self.held_pointing), self.held_pointing)
        return row


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of `module`'s state dict that later training steps do not change (for `load_state_dict`)."""
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def pretrain_llava(cfg: LanguagePretrainConfig, model: READ, tokenizer, *, log: Callable[[dict], None] = print
                   ) -> list[dict]:
    """Train `model.llava` in place on `cfg.objectives` (summed), its CLIP tower too unless
    `cfg.freeze_vision_tower`; returns one metrics row per evaluation.

    caption: next-token CE of the captions. presence / lookup: full-vocabulary CE of the yes/no / colour answer
    token. pointing / answers: `conversation_losses`. Stops early at the first evaluation that reaches every target
    of `cfg.targets()` (yes/no accuracy, answers' See). With `cfg.keep_best`, `model.llava` ends with the weights of the
    evaluation `best_row` picks; every row's `kept` says whether its weights are the ones left in `model.llava`.
    With `cfg.restart_step`, an attempt whose evaluation there is below `cfg.restart_below` starts over from the
    weights `model.llava` came in with, on a new draw of scenes at `cfg.restart_lr_scale` times the lr
    (demo/language/restarts.py); the rows of every attempt are returned, each with its `attempt`, and only the
    last attempt's can be kept.
    """
    torch.manual_seed(cfg.seed)
    llava = model.llava
    llava.requires_grad_(True)
    if cfg.freeze_vision_tower:
        llava.model.vision_tower.requires_grad_(False)
    params = [p for p in llava.parameters() if p.requires_grad]
    objectives = Objectives.build(cfg, model, tokenizer)
    initial = snapshot(llava) if cfg.restart_step else None
    rows, started = [], time.perf_counter()
    for attempt in range(cfg.max_restarts + 1 if cfg.restart_step else 1):
        if attempt:
            llava.load_state_dict(initial)
        lr = cfg.lr * (cfg.restart_lr_scale if attempt else 1.0)
        optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s))
        streams = attempt_streams(cfg, attempt)
        attempt_rows, losses, restart = [], {name: [] for name in cfg.objectives}, False
        llava.train()
        for step in range(1, cfg.steps + 1):
            parts = objectives.losses(streams)
            optimizer.zero_grad()
            sum(parts.values()).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            for name, part in parts.items():
                losses[name].append(part.item())
            if step % cfg.eval_every and step != cfg.steps:
                continue
            row = {"step": step, "seconds": time.perf_counter() - started,
                   "loss": float(sum(np.mean(v) for v in losses.values()))}
            row |= {f"loss_{name}": float(np.mean(v)) for name, v in losses.items()} | objectives.held_out()
            if cfg.restart_step:
                row["attempt"] = attempt
            attempt_rows.append(row)
            log(row)
            losses = {name: [] for name in cfg.objectives}
            if restart := bool(stalled(cfg, row, attempt)):
                break
            if best_row(cfg, attempt_rows) is row:
                chosen = row
                if cfg.keep_best:
                    kept_state = snapshot(llava)
            if cfg.targets() and not missed_targets(cfg, row):
                break
        rows += attempt_rows
        if not restart:
            break
    if cfg.keep_best:
        llava.load_state_dict(kept_state)
    for row in rows:
        row["kept"] = row is chosen
    llava.eval()
    return rows


def best_row(cfg: LanguagePretrainConfig, rows: list[dict]) -> dict:
    """The evaluation whose weights `pretrain_llava` keeps: the first with the highest `cfg.keep_best` (NaN counts
    as lowest), or the last row when `cfg.keep_best` is ""."""
    if not cfg.keep_best:
        return rows[-1]
    values = [float(row.get(cfg.keep_best, math.nan)) for row in rows]
    score = [-math.inf if math.isnan(v) else v for v in values]
    return rows[score.index(max(score))]


def lr_factor(cfg: LanguagePretrainConfig, step: int) -> float:
    """Multiplier of `cfg.lr` after `step` scheduler steps: linear warmup, then linear decay to 0 at `cfg.steps`."""
    warmup = (step + 1) / max(1, cfg.warmup_steps)
    return min(warmup, max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.warmup_steps)))


def missed_targets(cfg: LanguagePretrainConfig, row: dict) -> list[str]:
    """The held-out metrics of `cfg.targets()` that evaluation `row` has not reached (NaN never reaches)."""
    return unreached(row, cfg.targets())


def target_shortfall(cfg: LanguagePretrainConfig, rows: list[dict]) -> str:
    """A warning naming each target (`target_accuracy`, `target_see`) the last evaluation is below, else ""."""
    if not rows or not (missed := missed_targets(cfg, rows[-1])):
        return ""
    last = rows[-1]
    below = "; ".join(f"held-out {metric} {100 * last[metric]:.1f}% after {last['step']} steps is below "
                      f"{key}={getattr(cfg, key)}" for key, metric in TARGETS.items() if metric in missed)
    return f"{below}; raise steps (or try another seed) for a stronger warm start"


def held_out_batch(cfg: LanguagePretrainConfig, sampler: QuestionSampler) -> QuestionBatch:
    """The `cfg.eval_questions` held-out questions: scenes and questions from seeds that training never draws."""
    return sampler.batch(np.random.default_rng([cfg.seed, 1]), random.Random(cfg.seed * 1000 + 1), cfg.eval_questions)


@torch.no_grad()
def accuracy(llava: nn.Module, held_out: QuestionBatch, yes_no: tuple[int, int], chunk: int = 64) -> dict[str, float]:
    """Held-out accuracy per question kind (`acc_<kind>`) and overall (`acc`); chance is 0.5 by construction."""
    hits = []
    for start in range(0, len(held_out.yes), chunk):
        part = QuestionBatch(**{f.name: getattr(held_out, f.name)[start:start + chunk] for f in fields(QuestionBatch)})
        logits = yes_no_logits(llava, part, yes_no)
        hits += ((logits[:, 0] > logits[:, 1]) == part.yes).tolist()
    hit, kinds = np.array(hits), np.array(held_out.kinds)
    return {"acc": float(hit.mean())} | {f"acc_{k}": float(hit[kinds == k].mean()) for k in sorted(set(kinds))}


def held_out_lookups(cfg: LanguagePretrainConfig, sampler: LookupSampler) -> LookupBatch:
    """The `cfg.eval_questions` held-out lookup questions, from seeds that training never draws."""
    return sampler.batch(np.random.default_rng([cfg.seed, 7]), random.Random(cfg.seed * 1000 + 7), cfg.eval_questions)


@torch.no_grad()
def lookup_accuracy(llava: nn.Module, held_out: LookupBatch, answer_ids: dict[str, int], chunk: int = 64
                    ) -> dict[str, float]:
    """`lookup_acc`: share of held-out lookups whose likeliest colour token is the object's colour (chance 1/7)."""
    colours = torch.tensor(sorted(answer_ids.values()))
    hits = []
    for start in range(0, len(held_out.answer), chunk):
        part = held_out.rows(start, start + chunk)
        hits.append(colours[next_token_logits(llava, part)[:, colours].argmax(-1)] == part.answer)
    return {"lookup_acc": float(torch.cat(hits).float().mean())}


def held_out_captions(cfg: LanguagePretrainConfig, sampler: CaptionSampler) -> CaptionBatch:
    """The `cfg.eval_questions` held-out captioned scenes, from a seed that training never draws."""
    return sampler.batch(np.random.default_rng([cfg.seed, 5]), cfg.eval_questions)


def held_out_pointing(cfg: LanguagePretrainConfig, sampler: PointingSampler,
                      false_premise_rate: float = 0.0) -> PointingBatch:
    """The `cfg.eval_questions` held-out conversations, from seeds that training never draws."""
    return sampler.batch(np.random.default_rng([cfg.seed, 3]), random.Random(cfg.seed * 1000 + 3), cfg.eval_questions,
                         false_premise_rate)


def conversation_losses(cfg: LanguagePretrainConfig, model: READ, batch: PointingBatch, scale: float
                        ) -> dict[str, torch.Tensor]:
    """One LLM pass over READ conversations: "answers" (READ's next-token CE of the answers) and/or "pointing"
    (`pointing_ce` of the true premises' [SEG] maps, scale sqrt(D)), as `cfg.objectives` asks."""
    hidden_CTD = model.hidden_states(clip_images=batch.pixels, image_index=torch.arange(len(batch.types)),
                                     input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    parts = {}
    if "answers" in cfg.objectives:
        parts["answers"] = next_token_ce(model.llava.lm_head(hidden_CTD), batch.labels)
    if "pointing" in cfg.objectives:
        keep = batch.exists.nonzero(as_tuple=True)[0]
        similarity_NP = read_helpers.similarity_from_states(model, hidden_CTD[keep], batch.input_ids[keep])
        parts["pointing"] = pointing_ce(similarity_NP, batch.target[keep], scale=scale)
    return parts


@torch.no_grad()
def answer_ce(model: READ, held_out: PointingBatch, chunk: int = 64) -> float:
    """READ's next-token CE of the held-out answers, averaged over chunks of `chunk` conversations."""
    values = []
    for start in range(0, len(held_out.types), chunk):
        part = held_out.rows(start, start + chunk)
        hidden_CTD = model.hidden_states(clip_images=part.pixels, image_index=torch.arange(len(part.types)),
                                         input_ids=part.input_ids, attention_mask=part.attention_mask)
        values.append(next_token_ce(model.llava.lm_head(hidden_CTD), part.labels).item())
    return float(np.mean(values))


def similarity_maps(model: READ, batch: PointingBatch) -> torch.Tensor:
    """The [SEG] similarity map of each prompt (one [SEG] each): (N, P) float32."""
    return read_helpers.similarity_maps(model, clip_images=batch.pixels, image_index=torch.arange(len(batch.types)),
                                        input_ids=batch.input_ids, attention_mask=batch.attention_mask)


@torch.no_grad()
def pointing_accuracy(model: READ, held_out: PointingBatch, chunk: int = 64) -> dict[str, float]:
    """Does the map pick the queried object out of the scene's objects? Means over the held-out prompts:

    point_auc (and point_auc_<query type>): probability that a patch of the object is more similar to [SEG] than a
    patch of another object (0.5: chance; background patches are left out, so objectness alone scores 0.5);
    point_hit: the hottest patch of the whole map is on the object (a random map: about the object's share of P).
    """
    held_out = held_out.true_premises()
    maps = []
    for start in range(0, len(held_out.types), chunk):
        maps.append(similarity_maps(model, held_out.rows(start, start + chunk)))
    sim_NP = torch.cat(maps)
    target, others = held_out.target, held_out.others
    hit = target.gather(1, sim_NP.argmax(1, keepdim=True))[:, 0].float().numpy()
    above = (sim_NP[:, :, None] > sim_NP[:, None, :]).float() + 0.5 * (sim_NP[:, :, None] == sim_NP[:, None, :])
    pairs = (target[:, :, None] & others[:, None, :]).float()
    scored = pairs.sum((1, 2)) > 0  # a scene whose other objects cover no patch has no pair to rank
    auc = ((above * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1)).numpy()
    types, keep = np.array(held_out.types), scored.numpy()
    out = {"point_auc": float(auc[keep].mean()), "point_hit": float(hit.mean())}
    return out | {f"point_auc_{t}": float(auc[keep & (types == t)].mean()) for t in sorted(set(types[keep]))}


def pretrain_language(cfg: LanguagePretrainConfig, *, log: Callable[[dict], None] = print
                      ) -> tuple[nn.Module, object, list[dict]]:
    """Build `cfg.model`, pretrain its LLaVA; returns (the LLaVA, its tokenizer, metrics rows)."""
    torch.set_num_threads(cfg.num_cpus)
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_read(cfg.model)
    rows = pretrain_llava(cfg, model, tokenizer, log=log)
    return model.llava, tokenizer, rows
