"""``local-tiny``: the offline base model the project builds for itself.

Not a real language model and not named like one: a 1M-parameter Llama-style model with a
byte-level BPE tokenizer and a ChatML template, both trained here on the general-English
corpus shipped in ``training/corpus`` (written for this project), never on a persona's
material. Built once and cached under the models folder, keyed by a hash of the recipe, so it
is rebuilt only when the corpus or the recipe below changes. Good enough that fine-tuning on a
person's answers measurably changes it; not good enough to be mistaken for a real LM.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

from clone_pipeline.files import atomic_path

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


# The model and its pretraining: about a minute on two CPU cores.
MODEL_CONFIG = {"hidden_size": 128, "intermediate_size": 344, "num_hidden_layers": 2,
                "num_attention_heads": 4, "num_key_value_heads": 4,
                "max_position_embeddings": 1024, "tie_word_embeddings": True,
                "rope_theta": 10000.0}
PRETRAIN = {"steps": 300, "batch": 16, "block": 128, "lr": 2e-3, "warmup": 20, "seed": 0}


def recipe_hash() -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"vocab": VOCAB_SIZE, "specials": [EOS, PAD, IM_START, IM_END],
                              "template": CHAT_TEMPLATE, "eos": IM_END, "v": 2,
                              "model": MODEL_CONFIG, "pretrain": PRETRAIN}).encode())
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tokenizer_dir(models_dir: Path) -> Path:
    return models_dir / NAME / f"tokenizer-{recipe_hash()}"


def model_dir(models_dir: Path) -> Path:
    return models_dir / NAME / f"model-{recipe_hash()}"


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
    # EOS is the end of a chat turn, so generation stops where an answer ends; <|endoftext|>
    # separates documents in pretraining.
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD,
                                   bos_token=None, unk_token=None,
                                   additional_special_tokens=[EOS, IM_START])
    fast.chat_template = CHAT_TEMPLATE
    with atomic_path(target) as tmp:  # a half-built tokenizer is never picked up
        fast.save_pretrained(tmp)
    return target


def pretraining_documents() -> list[str]:
    """The corpus as documents: prose paragraphs, and the Q/A exchanges as ChatML chats so
    the base knows the chat template's shape before any fine-tuning."""
    docs = []
    for path in sorted(CORPUS_DIR.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        if path.name == "conversations.txt":
            for q, a in re.findall(r"^Q: (.+?)\nA: (.+?)$", text, flags=re.M):
                docs.append(f"{IM_START}user\n{q.strip()}{IM_END}\n"
                            f"{IM_START}assistant\n{a.strip()}{IM_END}\n")
        else:
            docs += [p.strip() for p in text.split("\n\n") if len(p.split()) >= 8]
    return docs


def model_config(tokenizer):
    """local-tiny's transformers config for *tokenizer* (its own, from ensure_tokenizer)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), bos_token_id=None,
                       eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, **MODEL_CONFIG)


def ensure_base_model(models_dir: Path,
                      progress: Callable[[int, int, float], None] | None = None) -> Path:
    """Build (pretrain) local-tiny if this recipe has not been built yet; return its folder,
    which ``AutoModelForCausalLM`` and ``AutoTokenizer`` load with local_files_only=True."""
    target = model_dir(models_dir)
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_tokenizer(models_dir)),
                                              local_files_only=True)
    stream: list[int] = []
    eos = tokenizer.convert_tokens_to_ids(EOS)
    for doc in pretraining_documents():
        stream += tokenizer(doc, add_special_tokens=False)["input_ids"] + [eos]
    data = torch.tensor(stream, dtype=torch.long)
    block, batch = PRETRAIN["block"], PRETRAIN["batch"]
    config = model_config(tokenizer)
    generator = torch.Generator().manual_seed(PRETRAIN["seed"])
    torch.manual_seed(PRETRAIN["seed"])
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=PRETRAIN["lr"], weight_decay=0.01)
    steps, warmup = PRETRAIN["steps"], PRETRAIN["warmup"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))))
    model.train()
    for step in range(steps):
        starts = torch.randint(0, len(data) - block - 1, (batch,), generator=generator)
        x = torch.stack([data[s:s + block] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if progress:
            progress(step + 1, steps, loss.item())
    model.eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, eos], pad_token_id=tokenizer.pad_token_id)
    with atomic_path(target) as tmp:  # a half-trained model is never picked up
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "local_tiny.json").write_text(json.dumps(
            {"name": NAME, "recipe": recipe_hash(), "pretrain_tokens": len(stream),
             "final_loss": round(loss.item(), 4), "parameters": model.num_parameters()},
            indent=2))
    return target
