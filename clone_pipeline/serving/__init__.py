"""The gateway: the HTTP face of the served clones (FastAPI).

It authenticates every request, maps it to the caller's own deployment and adapter, salts the
engine's prefix cache per user, caches deterministic answers, logs usage without text, and
adds what the engine lacks: the seed's REST API, speech in the person's matched voice, and a
chat page. The engine (vLLM) is reached over HTTP only.
"""
