"""The tiny preset's tokenizer, built in code (no files, no downloads).

A byte-level BPE (GPT-2 style byte alphabet, so ANY text encodes losslessly) whose merges are learnt at build time
from a small built-in English corpus (prompt templates, colours, shapes, frequent words) by a deterministic pure-Python
BPE trainer: ties are broken by the pair itself, so every process builds the identical vocabulary. Special tokens
follow the LLaVA/LLaMA convention: `<unk>`, `<s>` (prepended as BOS), `</s>` (EOS), `<pad>`, plus `<image>` and `[SEG]`.
"""

from __future__ import annotations

import collections
import functools

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

UNK, BOS, EOS, PAD, IMAGE, SEG = "<unk>", "<s>", "</s>", "<pad>", "<image>", "[SEG]"
SEG_SPACING_KEY = "readseg_seg_spacing"
"""Tokenizer setting (kept in `init_kwargs`, so `save_pretrained` writes it into tokenizer_config.json and every export
carries it): how the text before a `[SEG]` is tokenised. "strip": the spaces right before `[SEG]` are dropped, so the
state READ reads for `[SEG]` (the token before it) is a word (`▁is`, as READ's tokenizer gives), never a lone
whitespace token (what a Metaspace / byte-level tokenizer makes of "is [SEG]"); "keep" (absent: tokenizers saved
before the setting existed, and the tiny preset's in-code tokenizer, whose demo runs were measured so): text as is."""
SPECIAL_TOKENS = (UNK, BOS, EOS, PAD, IMAGE, SEG)
"""Ids 0..5, in this order."""

NUM_MERGES = 600
"""BPE merges learnt from the corpus; vocabulary = 6 specials + 256 bytes + merges (~860)."""
TEMPLATE_WEIGHT, GROUNDING_WEIGHT, WORD_WEIGHT = 8, 12, 3
"""Corpus repetitions: prompt templates and grounding words (colours, shapes, positions, sizes) first, so they
become single tokens, then the general word list."""

_TEMPLATES = """
A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and
polite answers to the human's questions. USER: ASSISTANT: <image>
Can you segment the object in this image? Please segment the object in this image. What is the object in this image?
Please respond with segmentation mask. Please output segmentation mask. Sure, it is [SEG]. Sure, [SEG]. It is [SEG].
Sure, the segmentation result is [SEG]. Sure, I will segment it. [SEG]. The mask is [SEG].
Please output segmentation mask and explain why. Please output segmentation mask and explain the reason.
Give some explanation. Segment the region described by the expression. Where is it? Which one? Show me.
There is no such object in the image. I could not find it in the image. The image does not contain it.
Sorry, there is no object matching the description. Actually, the object is not there. It is not in the picture.
The description is wrong; did you mean the other one? You may mean the one on the left. Here it is [SEG].
"""

_GROUNDING_WORDS = """
red green blue yellow orange purple pink brown black white gray grey cyan magenta dark light bright colour color
circle square triangle rectangle star ellipse oval shape shapes cross diamond hexagon disk box ring line dot
left right top bottom middle center centre upper lower front back behind near far next above below between
small large big tiny huge little tall short wide narrow long round thin thick first second third last other
"""

_WORDS = """
man woman person people child boy girl player dog cat horse cow sheep bird car bus truck train bike bicycle
table chair couch bed tv laptop phone bottle cup bowl plate pizza cake banana apple sandwich umbrella kite ball
the a an and or of in on at to is are was were be been it its this that these those with without for from by as
what which who whom whose where when why how can could would should will may might must do does did have has had
there here one two three four five six seven eight nine ten some any all each every no not yes only also very
image picture photo object region part area thing things side corner edge background foreground scene view
I you he she we they me him her us them my your his our their mine yours please thanks thank sure okay ok
wearing holding sitting standing walking running looking playing eating riding lying hanging using carrying
question answer explain because describe description find found see seen look shown showing point points
"""


def _pretokenize(text: str) -> list[str]:
    """Byte-level chunks (GPT-2 regex split, bytes mapped to printable characters)."""
    return [chunk for chunk, _ in pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)]


def _learn_merges(corpus: str, num_merges: int) -> list[tuple[str, str]]:
    """Deterministic BPE training: the most frequent adjacent pair wins, ties broken by the smaller pair.

    Pair counts are updated incrementally (only the words containing the merged pair are rescanned).
    """
    chunk_counts = collections.Counter(_pretokenize(" ".join(corpus.split())))
    words = [list(chunk) for chunk in sorted(chunk_counts)]
    freqs = [chunk_counts[chunk] for chunk in sorted(chunk_counts)]
    pair_counts: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for w, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += freqs[w]
            where[pair].add(w)
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        candidates = [(-count, pair) for pair, count in pair_counts.items() if count > 0]
        if not candidates:
            break
        best = min(candidates)[1]
        merges.append(best)
        merged = best[0] + best[1]
        for w in sorted(where.pop(best, ())):
            symbols = words[w]
            for pair in zip(symbols, symbols[1:]):
                pair_counts[pair] -= freqs[w]
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[w] = out
            for pair in zip(out, out[1:]):
                pair_counts[pair] += freqs[w]
                where[pair].add(w)
        pair_counts.pop(best, None)
    return merges


@functools.lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    corpus = _TEMPLATES * TEMPLATE_WEIGHT + _GROUNDING_WORDS * GROUNDING_WEIGHT + _WORDS * WORD_WEIGHT
    merges = _learn_merges(corpus, NUM_MERGES)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    return vocab, merges


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny preset's tokenizer: `<s>` prepended, `<image>`/`[SEG]` kept whole, any UTF-8 text lossless."""
    vocab, merges = _vocab_and_merges()
    tok = Tokenizer(models.BPE(vocab=dict(vocab), merges=list(merges), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        extra_special_tokens=[IMAGE, SEG],
        padding_side="right",
        model_max_length=4096,
    )
