"""Training: the base models (SmolLM2, local-tiny), the fine-tuning loop (LoRA, DoRA, QLoRA)
and what it rests on (collation and packing, hardware profiles, the memory estimate and
pre-flight), the child process a run trains in (its job, entry point, supervision, several
GPUs), and judging the result (evaluation, promotion)."""
