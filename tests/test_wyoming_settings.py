"""The Wyoming port's settings (config.py, cli.py): the protocol has no keys, so with API keys
set it listens beyond loopback only when ``--wyoming-unauthenticated`` says so; and one port
can't be bound by every worker of ``--workers N``."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from orpheus_ws.cli import SERVE_FLAGS, main
from orpheus_ws.compat.wyoming_server import WyomingServer
from orpheus_ws.config import Settings, is_loopback
from orpheus_ws.devtools.llama_server import free_port

from .fakes import EngineBase, speech_engine


@pytest.mark.parametrize("key,keys_file", [("secret", ""), ("", "/etc/keys")])
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "ha.local"])
def test_keys_and_a_host_beyond_loopback_need_the_flag(key: str, keys_file: str,
                                                       host: str) -> None:
    settings = Settings(wyoming_port=10200, wyoming_host=host, api_key=key,
                        api_keys_file=keys_file)
    with pytest.raises(ValueError, match="--wyoming-unauthenticated"):
        settings.validate()
    replace(settings, wyoming_unauthenticated=True).validate()


@pytest.mark.parametrize("settings", [
    Settings(wyoming_port=10200, wyoming_host="0.0.0.0"),  # no keys: nothing to bypass
    Settings(wyoming_port=10200, api_key="secret"),  # loopback, the default
    Settings(wyoming_port=10200, wyoming_host="::1", api_key="secret"),
    Settings(wyoming_port=10200, wyoming_host="localhost", api_key="secret"),
    Settings(wyoming_host="0.0.0.0", api_key="secret"),  # the port is off
])
def test_what_needs_no_flag(settings: Settings) -> None:
    settings.validate()


def test_the_port_is_a_port() -> None:
    with pytest.raises(ValueError, match="wyoming_port"):
        Settings(wyoming_port=70000).validate()


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "LOCALHOST"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.com", ""]))


def test_the_settings_are_serve_flags_from_the_environment() -> None:
    assert {"wyoming_port", "wyoming_host", "wyoming_unauthenticated"} <= set(SERVE_FLAGS)
    settings = Settings.from_env({"ORPHEUS_WS_WYOMING_PORT": "10200",
                                  "ORPHEUS_WS_WYOMING_HOST": "0.0.0.0",
                                  "ORPHEUS_WS_WYOMING_UNAUTHENTICATED": "1",
                                  "ORPHEUS_WS_API_KEY": "secret"})
    assert (settings.wyoming_port, settings.wyoming_host, settings.wyoming_unauthenticated) \
        == (10200, "0.0.0.0", True)


def test_serve_refuses_keys_and_an_open_host_without_the_flag(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(Settings.env_name(name), raising=False)
    assert main(["serve", "--api-key", "secret", "--wyoming-port", "10200",
                 "--wyoming-host", "0.0.0.0", "--llm-url", "http://127.0.0.1:9"]) == 2
    assert "--wyoming-unauthenticated" in capsys.readouterr().err


def test_serve_refuses_a_wyoming_port_with_several_workers(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.__dataclass_fields__:
        monkeypatch.delenv(Settings.env_name(name), raising=False)
    assert main(["serve", "--workers", "2", "--wyoming-port", "10200",
                 "--llm-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "--wyoming-port" in err and "--workers 2" in err


@pytest.mark.parametrize("settings,warns", [
    (Settings(api_key="secret"), True),
    (Settings(wyoming_unauthenticated=True), True),
    (Settings(), False),
])
async def test_the_port_warns_at_start_that_it_takes_no_key(
        settings: Settings, warns: bool, caplog: pytest.LogCaptureFixture) -> None:
    settings = replace(settings, wyoming_port=free_port())
    server = WyomingServer(speech_engine(EngineBase()), settings, version="0")
    with caplog.at_level(logging.INFO, logger="orpheus_ws"):
        await server.start()
        await server.stop()
    assert f"Wyoming TTS on tcp://{settings.wyoming_host}:{settings.wyoming_port}" \
        in caplog.text
    assert ("takes no API key" in caplog.text) is warns
