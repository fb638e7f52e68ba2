"""orpheus_ws: a realtime speech server for Orpheus TTS."""

from __future__ import annotations

__version__ = "0.1.0"
