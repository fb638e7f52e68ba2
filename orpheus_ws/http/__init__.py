"""The native HTTP API: the seed FastAPI server's routes (``seed_api``), with exceptions
mapped to statuses in one place (``errors``)."""
