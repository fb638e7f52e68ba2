"""The managed LLM backend: the llama-server that ``orpheus-ws serve`` runs itself when no
``--llm-url`` is given (``plan``: its command line; ``supervisor``: its life)."""
