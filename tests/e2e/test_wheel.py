"""A normal (non-editable) install serves the web player: the wheel carries it as package data.

The wheel is built from this tree, installed with ``pip install`` (no ``-e``) into a new virtual
environment, and its own ``orpheus-ws`` console script serves ``/client/`` from outside the
source tree. The new environment borrows this one's dependencies through a ``.pth`` file
instead of downloading them again.
"""

from __future__ import annotations

import re
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp

from orpheus_ws.devtools.standin_llm import StandinLLMServer

from ..utils import scaled
from .harness import HOST, ServerProcess, clean_env

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          timeout=scaled(300))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done.stdout


async def test_an_installed_wheel_serves_the_player(fake_llm: StandinLLMServer,
                                                    tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", dist, ROOT, cwd=tmp_path)
    wheel = next(dist.glob("orpheus_ws-*.whl"))
    packaged = zipfile.ZipFile(wheel).namelist()
    assert "orpheus_ws/web_client/index.html" in packaged
    assert "orpheus_ws/web_client/app.js" in packaged

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=tmp_path).strip()
    (Path(purelib) / "borrowed-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    where = run(python, "-c", "import orpheus_ws; print(orpheus_ws.__file__)", cwd=tmp_path)
    assert where.startswith(str(venv)), where  # the installed copy, not this tree

    server = ServerProcess(
        lambda port: [str(venv / "bin" / "orpheus-ws"), "serve", "--host", HOST, "--port",
                      str(port), "--llm-url", fake_llm.url, "--codec", "passthrough"],
        tmp_path / "server.log", env=clean_env(), cwd=tmp_path)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/client/") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                page = await response.text()
            scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
            assert "app.js" in scripts
            for script in scripts:
                async with http.get(f"{server.url}/client/{script}") as response:
                    assert response.status == 200
                    assert "javascript" in response.content_type
                    assert "import" in await response.text()
    finally:
        await server.stop()
