"""The inference engine: vLLM in its own process, and the HTTP client that talks to it.

One engine per base model holds every user's LoRA adapter and batches requests from
different users together. It listens on loopback with its own random key; only the gateway
(and the deployment service) speak to it. Nothing here imports torch or vLLM: the engine
runs from its own virtual environment (``.venv-engine``), so its pins never clash with ours.
"""
