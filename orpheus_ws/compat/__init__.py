"""Where protocol adapters live: other vendors' wire protocols (OpenAI speech, Deepgram,
Cartesia, ElevenLabs sockets) as thin translations onto the engine's public face
(``orpheus_ws.engine``), beside the native ``http`` and ``ws`` transports. Each adapter is one
module with its own routes; shared machinery (segmentation, cancel, flow control, format
conversion) stays below them, in the engine and in ``audio``/``formats``. Home Assistant's
Wyoming protocol is one too, on a TCP port of its own (``wyoming_server.py``).
"""
