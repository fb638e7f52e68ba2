"""What every transport shares below its wire format, and nothing of any one protocol: the
socket runtime and its limits, the ordered send queue, a context's audio in its format, one
utterance fed as text arrives, and the HTTP streaming glue. The native socket (``ws/``), the
seed API (``http/``) and the vendors' adapters (``compat/``) build on it; it imports none of
them."""
