"""An engine put together from the server's settings: codec, decoder service, LLM client."""

from __future__ import annotations

from ..config import Settings
from .admission import Admission
from .backends import BackendPool
from .capacity import realtime_capacity
from .codec import load_codec
from .decoder import DecoderService
from .engine import Engine
from .llm import LLMClient
from .llm_events import LlmApi
from .pipeline import StreamTuning


def stream_tuning(settings: Settings, device: str) -> StreamTuning:
    """The chunk schedule's knobs for a codec on ``device``."""
    return StreamTuning(max_new_frames=settings.new_frames_cap(device),
                        margin_s=settings.margin_s(device),
                        max_batch_wait_s=settings.batch_wait_s(device),
                        runaway_guard=settings.runaway_guard)


def build_engine(settings: Settings, *, llm_url: str | None = None,
                 torch_threads: int | None = None) -> Engine:
    """The engine for these settings (loads the decoder's weights); ``llm_url`` and
    ``torch_threads`` replace the settings' (a managed llama-server's URL and share of cores)."""
    threads = settings.torch_threads if torch_threads is None else torch_threads
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    codec = load_codec(settings.snac_model, settings.device, kind=settings.codec,
                       noise=settings.decoder_noise, graphs=settings.snac_graphs)
    decoder = DecoderService(codec, max_batch=settings.max_batch, batching=settings.batching)
    api: LlmApi = "openai" if settings.llm_api == "openai" else "llama"
    urls = [u.strip() for u in (llm_url or settings.llm_url).split(",") if u.strip()]
    llm = BackendPool([LLMClient(url, api, model=settings.llm_model,
                                 read_timeout_s=settings.llm_timeout) for url in urls],
                      check_interval_s=settings.llm_check_interval)
    over_capacity = realtime_capacity(decoder, llm) if settings.realtime_admission else None
    admission = Admission(max_generations=settings.max_generations,
                          per_key=settings.key_max_generations, max_queued=settings.max_queued,
                          queue_timeout_s=settings.queue_timeout, over_capacity=over_capacity)
    return Engine(llm, decoder, lineup=settings.lineup,
                  tuning=stream_tuning(settings, codec.device), lookahead=settings.lookahead,
                  admission=admission, trim_quiet=settings.trim_quiet,
                  normalize=settings.normalize)
