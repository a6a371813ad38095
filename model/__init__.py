"""READ model (pure PyTorch): LLaVA from transformers, SAM from segment_anything.modeling (model/sam.py), the [SEG]
projector, SasP (model/sasp.py), losses, presets and checkpoint loaders (model/build.py).

Allowed imports: torch, transformers, peft, safetensors, tokenizers, sentencepiece (model/read_prompt.py: READ's
slow-tokenizer rules), segment_anything.modeling (model/sam.py only).
"""
