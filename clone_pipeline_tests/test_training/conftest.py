import pytest

from clone_pipeline.training.local_tiny import ensure_base_model


@pytest.fixture(scope="session")
def local_tiny(models_dir):
    """The real local-tiny base, pretrained once per session (about a minute on 2 cores)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_base_model(models_dir)
    return (AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval(),
            AutoTokenizer.from_pretrained(path, local_files_only=True), path)
