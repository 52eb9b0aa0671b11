"""``local-tiny``: the offline base the project builds for itself (tokenizer part).

Not a real language model and not named like one. Its byte-level BPE tokenizer is trained on
the general-English corpus shipped in ``training/corpus`` (written for this project), never on
a persona's material, and cached under the data root keyed by a hash of its recipe, so it is
rebuilt only when the corpus or the recipe below changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "corpus"
NAME = "local-tiny"
VOCAB_SIZE = 8192
EOS, PAD, IM_START, IM_END = "<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"
# ChatML; {% generation %} marks the assistant's tokens so training can mask everything else.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def recipe_hash() -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"vocab": VOCAB_SIZE, "specials": [EOS, PAD, IM_START, IM_END],
                              "template": CHAT_TEMPLATE, "v": 1}).encode())
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tokenizer_dir(models_dir: Path) -> Path:
    return models_dir / NAME / f"tokenizer-{recipe_hash()}"


def ensure_tokenizer(models_dir: Path) -> Path:
    """Build the tokenizer if this recipe has not been built yet; return its folder."""
    target = tokenizer_dir(models_dir)
    if (target / "tokenizer.json").exists():
        return target
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[EOS, PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([str(p) for p in sorted(CORPUS_DIR.glob("*.txt"))], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD,
                                   bos_token=None, unk_token=None,
                                   additional_special_tokens=[IM_START, IM_END])
    fast.chat_template = CHAT_TEMPLATE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fast.save_pretrained(tmp)
    os.replace(tmp, target)  # atomic: a half-built tokenizer is never picked up
    return target
