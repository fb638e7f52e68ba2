"""A loopback stand-in for the Hugging Face Hub that serves model repos from a local folder.

``root/{owner}/{name}/{files...}`` is served the way the Hub serves a public model repo to
``huggingface_hub`` (2.x), so with ``HF_ENDPOINT`` set to :attr:`FakeHub.url` the real
``hf_hub_download``, ``snapshot_download``, ``model_info``/``repo_info`` and
``list_repo_files``/``list_repo_tree`` download from it:

- ``GET /api/models/{repo}`` and ``GET /api/models/{repo}/revision/{rev}``: the repo's info
  (``sha``, ``siblings``; sizes and LFS data with ``?blobs=true``);
- ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the tree listing (``?recursive=true``);
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: a plain file answers 200 with ``X-Repo-Commit``,
  its git blob id as ``ETag`` and ``Content-Length``; an LFS file (a weight file by its suffix)
  answers 302 to a second port standing for the CDN, with ``X-Linked-Etag`` (its sha256) and
  ``X-Linked-Size``, as the Hub does, and the CDN serves its bytes (``Range`` honoured);
- ``GET /api/agent-harnesses``: an empty registry (huggingface_hub fetches it, once a day per
  ``HF_HOME``, to build its User-Agent);
- errors as the Hub sends them: 404 with ``X-Error-Code: RepoNotFound``, ``RevisionNotFound`` or
  ``EntryNotFound`` (with ``X-Repo-Commit``), and 401 ``GatedRepo`` for the files of a gated repo.

The revision is ``main`` or the commit id, a hash of the repo's files (it changes when they do).
Every request is logged in :attr:`FakeHub.requests`, so tests can tell whether it was touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiohttp import web

__all__ = ["HOST", "LFS_SUFFIXES", "FakeHub", "HubRequest"]

HOST = "127.0.0.1"
LFS_SUFFIXES = frozenset({".gguf", ".bin", ".safetensors", ".pt", ".pth", ".onnx", ".npz"})
CHUNK = 1 << 20
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class HubRequest:
    """One request the fake hub answered: method, path with query, status."""

    method: str
    path: str
    status: int


@dataclass(frozen=True)
class _File:
    path: str  # posix, relative to the repo folder
    file: Path
    size: int
    oid: str  # git blob id (sha1 of "blob {size}\0" + bytes)
    sha256: str | None  # set for LFS files

    @property
    def etag(self) -> str:
        return self.sha256 if self.sha256 is not None else self.oid


@dataclass(frozen=True)
class _Repo:
    repo_id: str
    sha: str
    files: dict[str, _File]


class FakeHub:
    """The fake Hub on 127.0.0.1; ``async with FakeHub(root) as hub`` then ``HF_ENDPOINT=hub.url``.

    ``gated`` names repos (``owner/name``) whose info is public but whose files answer 401
    ``GatedRepo``, as the Hub answers a client without access.
    """

    def __init__(self, root: Path, *, gated: Iterable[str] = (), port: int = 0) -> None:
        self.root = root
        self.gated = set(gated)
        self.port = port
        self.cdn_port = 0
        self.requests: list[HubRequest] = []
        self._hashes: dict[Path, tuple[int, int, str, str | None]] = {}
        self._blobs: dict[str, Path] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the value for ``HF_ENDPOINT`` (once started)."""
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        """Bind the hub port (0 picks a free one) and the CDN port, and start serving."""
        app = web.Application(middlewares=[self._log])
        app.router.add_get("/api/models/{owner}/{name}", self._info)
        app.router.add_get("/api/models/{owner}/{name}/revision/{rev}", self._info)
        app.router.add_get("/api/models/{owner}/{name}/tree/{rev}", self._tree)
        app.router.add_get("/api/models/{owner}/{name}/tree/{rev}/{path:.+}", self._tree)
        app.router.add_get("/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        app.router.add_get("/lfs/{sha256}", self._cdn)
        app.router.add_get("/api/agent-harnesses", self._agent_harnesses)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        await web.TCPSite(self._runner, HOST, 0).start()
        self.cdn_port = next(int(a[1]) for a in self._runner.addresses if a[1] != self.port)

    async def stop(self) -> None:
        """Close both listening sockets and any download in progress."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeHub:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the repos on disk ---------------------------------------------------------------------

    def _scan(self, owner: str, name: str) -> _Repo | None:
        folder = self.root / owner / name
        if ".." in (owner, name) or not folder.is_dir():
            return None
        files: dict[str, _File] = {}
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                rel = file.relative_to(folder).as_posix()
                files[rel] = self._hash(rel, file)
        digest = hashlib.sha1(f"{owner}/{name}\n".encode())
        for f in files.values():
            digest.update(f"{f.path}\0{f.etag}\n".encode())
        return _Repo(f"{owner}/{name}", digest.hexdigest(), files)

    def _hash(self, rel: str, file: Path) -> _File:
        stat = file.stat()
        known = self._hashes.get(file)
        if known is None or known[:2] != (stat.st_size, stat.st_mtime_ns):
            data = file.read_bytes()
            oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            lfs = file.suffix.lower() in LFS_SUFFIXES
            known = (len(data), stat.st_mtime_ns, oid,
                     hashlib.sha256(data).hexdigest() if lfs else None)
            self._hashes[file] = known
        if known[3] is not None:
            self._blobs[known[3]] = file
        return _File(rel, file, known[0], known[2], known[3])

    async def _repo(self, request: web.Request) -> _Repo:
        """The repo a request names at the revision it names, or the Hub's 404."""
        info = request.match_info
        repo = await asyncio.to_thread(self._scan, info["owner"], info["name"])
        if repo is None:
            raise _error(404, "RepoNotFound", "Repository not found")
        rev = info.get("rev", "main")
        if rev not in ("main", repo.sha):
            raise _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return repo

    # -- routes --------------------------------------------------------------------------------

    @web.middleware
    async def _log(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.requests.append(HubRequest(request.method, request.path_qs, exc.status))
            raise
        self.requests.append(HubRequest(request.method, request.path_qs, response.status))
        return response

    async def _agent_harnesses(self, request: web.Request) -> web.Response:
        return web.json_response({"standardEnvVars": [], "harnesses": {}})

    async def _info(self, request: web.Request) -> web.Response:
        repo = await self._repo(request)
        blobs = request.query.get("blobs", "").lower() == "true"
        siblings: list[dict[str, Any]] = []
        for f in repo.files.values():
            sibling: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                sibling.update(size=f.size, blobId=f.oid)
                if f.sha256 is not None:
                    sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": 135}
            siblings.append(sibling)
        owner = request.match_info["owner"]
        gated: str | bool = "manual" if repo.repo_id in self.gated else False
        return web.json_response({
            "_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "author": owner,
            "sha": repo.sha, "lastModified": LAST_MODIFIED, "createdAt": LAST_MODIFIED,
            "private": False, "disabled": False, "gated": gated, "downloads": 0, "likes": 0,
            "tags": [], "siblings": siblings,
            "usedStorage": sum(f.size for f in repo.files.values()),
        })

    async def _tree(self, request: web.Request) -> web.Response:
        repo = await self._repo(request)
        base = request.match_info.get("path", "").strip("/")
        prefix = f"{base}/" if base else ""
        if base and not any(p.startswith(prefix) for p in repo.files):
            raise _error(404, "EntryNotFound", f"{base} does not exist on \"main\"", repo.sha)
        recursive = request.query.get("recursive", "").lower() == "true"
        entries: dict[str, dict[str, Any]] = {}
        for f in repo.files.values():
            if not f.path.startswith(prefix):
                continue
            parts = f.path[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                if recursive or depth == 1:
                    entries.setdefault(folder, {
                        "type": "directory", "size": 0, "path": folder,
                        "oid": hashlib.sha1(folder.encode()).hexdigest()})
            if recursive or len(parts) == 1:
                entry: dict[str, Any] = {"type": "file", "oid": f.oid, "size": f.size,
                                         "path": f.path}
                if f.sha256 is not None:
                    entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 135}
                entries[f.path] = entry
        return web.json_response([entries[key] for key in sorted(entries)])

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        repo = await self._repo(request)
        if repo.repo_id in self.gated:
            raise _error(401, "GatedRepo", f"Access to model {repo.repo_id} is restricted. You "
                         "must have access to it and be authenticated to access it.")
        f = repo.files.get(request.match_info["path"])
        if f is None:
            raise _error(404, "EntryNotFound", "Entry not found", repo.sha)
        headers = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes",
                   "Content-Disposition": _disposition(f.path)}
        if f.sha256 is None:
            return await _send(request, f.file, f.size, {**headers, "ETag": f'"{f.oid}"'})
        headers.update({
            "ETag": f'"{f.oid}"', "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size),
            "Location": f"http://{HOST}:{self.cdn_port}/lfs/{f.sha256}?filename={quote(f.path)}",
        })
        body = b"Found. Redirecting to " + headers["Location"].encode()
        return web.Response(status=302, body=None if request.method == "HEAD" else body,
                            headers=headers)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        if request.url.port != self.cdn_port:
            raise web.HTTPNotFound()
        sha256 = request.match_info["sha256"]
        file = self._blobs.get(sha256)
        if file is None or not file.is_file():
            raise web.HTTPNotFound(text="NoSuchKey")
        name = request.query.get("filename", sha256)
        headers = {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes",
                   "Content-Disposition": _disposition(name)}
        return await _send(request, file, file.stat().st_size, headers)


def _disposition(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"


def _error(status: int, code: str, message: str, commit: str | None = None) -> web.HTTPException:
    """The Hub's error answer: ``X-Error-Code``/``X-Error-Message`` and ``{"error": ...}``."""
    headers = {"X-Error-Code": code, "X-Error-Message": message}
    if commit is not None:
        headers["X-Repo-Commit"] = commit
    cls = web.HTTPUnauthorized if status == 401 else web.HTTPNotFound
    return cls(headers=headers, text=json.dumps({"error": message}),
               content_type="application/json")


async def _send(request: web.Request, file: Path, size: int,
                headers: dict[str, str]) -> web.StreamResponse:
    """The file's bytes (or, for HEAD, its headers), honouring one ``Range: bytes=a-[b]``."""
    start, end = 0, size - 1
    status = 200
    match = _RANGE.match(request.headers.get("Range", ""))
    if match is not None:
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        if start >= size or start > end:
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = "application/octet-stream"
    response.content_length = end - start + 1
    await response.prepare(request)
    if request.method != "HEAD":
        with file.open("rb") as stream:
            stream.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    break
                await response.write(chunk)
                left -= len(chunk)
    await response.write_eof()
    return response
