"""The LM rewriter keeps the job's validation: tiny causal LMs built in the test (a one-layer Llama whose weights
make it a fixed bigram chain, and a word-level tokenizer, both made in code: nothing is downloaded) answer with a
known text, and every malformed or invalid answer is rejected with its reason."""

from __future__ import annotations

import pathlib
from random import Random

import pytest

from pipelines.augment.context import ImageContext
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.lm import LMRewriter
from pipelines.augment.nouns_coco import COCO_NOUNS
from pipelines.augment.objects import ImageObject
from pipelines.augment.variants import VariantPolicy, make_variants
from tests.fixtures.augment import shape_index


def save_chain_lm(out: pathlib.Path, answer: list[str]) -> pathlib.Path:
    """A Llama that, after a prompt ending in ":", greedily says the words of `answer` and stops."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<unk>", "<pad>", "</s>", ":", *answer]
    assert len(set(words)) == len(words), "answer words must be distinct (the model is a bigram chain)"
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    fast.save_pretrained(out)
    size = len(words) + len(words) % 2
    config = LlamaConfig(vocab_size=len(words), hidden_size=size, intermediate_size=4, num_hidden_layers=1,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=4096,
                         eos_token_id=2, pad_token_id=1, bos_token_id=None, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    following = {3: 4 if answer else 2, **{4 + k: 5 + k for k in range(len(answer) - 1)}}
    if answer:
        following[3 + len(answer)] = 2
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight[:, : len(words)] = torch.eye(len(words))
        for norm in (model.model.norm, model.model.layers[0].input_layernorm,
                     model.model.layers[0].post_attention_layernorm):
            norm.weight.fill_(1.0)
        for token in range(len(words)):
            model.lm_head.weight[following.get(token, 2), token] = 50.0
    model.save_pretrained(out)
    return out


@pytest.fixture
def chain_lm(tmp_path):
    def make(text: str) -> LMRewriter:
        path = save_chain_lm(tmp_path / str(abs(hash(text))), text.split())
        return LMRewriter(str(path), max_new_tokens=12, num_tries=1)
    return make


SHAPES = shape_index({1: "circle", 2: "square"}, {1: "red", 2: "blue"})
SHAPE_CTX = ImageContext.build(SHAPES.lexicon(), SHAPES.image_categories[1], ["the red circle"],
                               SHAPES.image_attributes[1], SHAPES.attribute_values)

LEXICON = Lexicon.build(list(COCO_NOUNS))
STREET = ImageContext.build(
    LEXICON, frozenset({"person"}), ["left guy", "lady on right"],
    objects=(ImageObject(1, "person", (40.0, 110.0, 150.0, 360.0)),
             ImageObject(2, "person", (420.0, 100.0, 140.0, 370.0))),
    size=(640, 480), descriptions=[(1, "left guy"), (2, "lady on right")])


def test_the_chain_lm_says_what_it_was_built_to_say(chain_lm):
    assert chain_lm("the red star").generate("Expression: x\nEDIT: object\nFALSE:", sample_seed=None).strip() == (
        "the red star")


@pytest.mark.parametrize(
    ("answer", "edit", "text", "ctx", "target", "reason"),
    [
        ("the red square", "object", "the red circle", SHAPE_CTX, 1, "category_present"),  # a square is there
        ("the red banana", "object", "the red circle", SHAPE_CTX, 1, "unverifiable_category"),
        ("the green star", "object", "the red circle", SHAPE_CTX, 1, "not_a_noun"),  # two words changed
        ("the red circle", "object", "the red circle", SHAPE_CTX, 1, "unchanged"),
        ("", "object", "the red circle", SHAPE_CTX, 1, "lm_malformed"),  # an empty answer
        ("the blue circle", "attribute", "the red circle", SHAPE_CTX, 1, "attribute_in_image"),  # the square is blue
        ("lady on left", "relation", "lady on right", STREET, 2, "describes_annotated_object"),  # the left guy
    ],
)
def test_invalid_answers_are_rejected_with_their_reason(chain_lm, answer, edit, text, ctx, target, reason):
    made, rejected = make_variants(text, ctx, chain_lm(answer), Random(0), VariantPolicy(edits=(edit,)),
                                   target=target)
    assert made == [] and rejected == {(edit, reason): 1}


def test_a_valid_answer_is_kept_with_its_verification(chain_lm):
    made, rejected = make_variants("the red circle", SHAPE_CTX, chain_lm("the red star"), Random(0),
                                   VariantPolicy(edits=("object",)), target=1)
    assert [(v.edit, v.text, v.verified) for v in made] == [("object", "the red star", True)] and not rejected
    made, rejected = make_variants("left guy", STREET, chain_lm("middle guy"), Random(0),
                                   VariantPolicy(edits=("relation",)), target=1)
    assert made == [] and rejected == {("relation", "not_a_relation"): 1}  # "middle" is no swap of "left"
