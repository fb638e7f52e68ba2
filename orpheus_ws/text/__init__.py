"""Text before it reaches the model (no I/O): normalization per language (``normalize``),
SSML as speech clients send it (``ssml``)."""
