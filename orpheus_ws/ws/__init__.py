"""The native WebSocket protocol, ``/api/tts/ws`` (protocol.md).

Sans-I/O core, importable with the standard library, numpy and orjson alone: ``protocol``
(client messages, binary frames, close codes), ``events`` (typed server events) and
``session`` (contexts and their state machine). I/O side: ``outbox`` (ordered, flow-controlled
sending), ``delivery`` (one context through the engine onto the outbox) and ``endpoint``
(the Starlette glue).
"""
