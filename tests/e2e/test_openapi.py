"""schemathesis over the server's own OpenAPI document (``GET /openapi.json``, every HTTP
route, the compatibility routes included): requests generated from the document, valid and
invalid, get no 5xx, and every response keeps to the document (a documented status, content
type and body). The stand-in LLM runs in its own process, so the requests (made by
schemathesis' synchronous client) never wait on this test's event loop."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orpheus_ws.bench.harness import process, standin
from orpheus_ws.devtools.llama_server import free_port

# schemathesis.specs.openapi.schemas is imported above, at collection, not lazily by from_url:
# compiled late in a long session (pytest rewrites schemathesis' modules), CPython 3.11.7 can
# fail with "AST constructor recursion depth mismatch" (fixed in 3.11.8).
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def api_server(snac_dir: Path) -> Iterator[str]:
    with standin(tokens_per_second=0, slots=8, frames=2) as llm_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with process([sys.executable, "-m", "orpheus_ws.cli", "serve", "--host", "127.0.0.1",
                      "--port", str(port), "--llm-url", llm_url, "--snac-model", str(snac_dir),
                      "--device", "cpu", "--codec", "passthrough", "--log-level", "warning",
                      "--no-trim-quiet"],
                     url + "/health"):
            yield url


@pytest.fixture
def api_schema(api_server: str) -> Any:
    return schemathesis.openapi.from_url(api_server + "/openapi.json")


def operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_every_route_keeps_to_its_document(api_schema: Any) -> None:
    """Each operation: up to 20 generated requests (schemathesis' strategies, run by
    hypothesis directly: its pytest plugin doesn't load with this pytest)."""
    for operation in operations(api_schema):

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def keeps_to_the_document(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        keeps_to_the_document()


def test_the_document_names_every_http_route(api_schema: Any) -> None:
    documented = {operation.path for operation in operations(api_schema)}
    assert {"/api/tts", "/api/tts/wav", "/api/tts/stream", "/v1/audio/speech", "/v1/speak",
            "/v1/text-to-speech/{voice_id}", "/v1/text-to-speech/{voice_id}/stream",
            "/tts/bytes", "/v1/baseten", "/ready", "/health", "/metrics"} <= documented
