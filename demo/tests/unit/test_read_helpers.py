"""demo.read_helpers on READ's public primitives: the [SEG] maps alone (float32, with gradients) and batched greedy
text (KV cache, left-padded prompts) that agrees with `READ.generate`."""

import torch

from demo.read_helpers import greedy_token_ids, similarity_from_states, similarity_maps
from pipelines.data.tokenize import left_pad
from tests.fixtures.model import bias_lm_head, prompt_ids


def test_similarity_maps_are_the_maps_sasp_reads_with_gradients(tiny_model, tiny_inputs):
    model, _ = tiny_model
    inputs = {k: tiny_inputs[k] for k in ("clip_images", "image_index", "input_ids", "attention_mask")}
    maps = similarity_maps(model, **inputs)
    out = model(**tiny_inputs)
    torch.testing.assert_close(maps, torch.cat(out.similarity).detach())
    with torch.no_grad():
        again = similarity_from_states(model, model.hidden_states(**inputs), inputs["input_ids"])
    assert maps.dtype == again.dtype == torch.float32 and torch.equal(maps.detach(), again)
    maps.sum().backward()
    assert model.llava.model.language_model.layers[1].self_attn.q_proj.weight.grad.abs().sum() > 0


def test_batched_greedy_ids_match_generate_for_left_padded_prompts(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    torch.manual_seed(3)
    with torch.no_grad():  # a random LM head sharp enough that the greedy text depends on the image and the prompt
        model.llava.lm_head.weight.normal_(0, 2.0)
    c, s = model.clip_image_size, model.sam_image_size
    clips = torch.randn(2, 3, c, c)
    questions = ("Segment the circle.", "Where is the big red star on the left?", "Star?")
    prompts = [prompt_ids(model, tokenizer, q) for q in questions]
    image_index = torch.tensor([0, 1, 1])
    input_ids, attention_mask = left_pad(prompts, tokenizer.pad_token_id)
    ids_CG = greedy_token_ids(model, clip_images=clips, image_index=image_index, input_ids=input_ids,
                              attention_mask=attention_mask, max_new_tokens=6)
    texts = []
    for i, prompt in enumerate(prompts):
        out = model.generate(clip_image=clips[image_index[i]], sam_image=torch.zeros(3, s, s), resized_size=(s, s),
                             original_size=(s, s), input_ids=prompt[None], max_new_tokens=6)
        row = ids_CG[i].tolist()
        cut = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
        assert row[:cut] == out.token_ids and all(t == tokenizer.eos_token_id for t in row[cut:])
        texts.append(tuple(out.token_ids))
    assert len(set(texts)) > 1  # the rows really differ, so a mix-up between rows would show


def test_batched_greedy_ids_stop_at_stop_ids_and_pad_with_eos(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    word = tokenizer("red", add_special_tokens=False).input_ids[0]
    bias_lm_head(model, [model.image_token_id, word])
    c = model.clip_image_size
    prompt = prompt_ids(model, tokenizer, "Segment the circle.")
    input_ids, attention_mask = left_pad([prompt] * 2, tokenizer.pad_token_id)
    run = dict(clip_images=torch.randn(1, 3, c, c), image_index=torch.tensor([0, 0]), input_ids=input_ids,
               attention_mask=attention_mask, max_new_tokens=4)
    assert greedy_token_ids(model, **run).tolist() == [[word] * 4] * 2  # never <image>; runs to max_new_tokens
    assert greedy_token_ids(model, **run, stop_ids=(word,)).tolist() == [[word]] * 2
