"""The smallest API client the benchmarks and their limit programs need: aiohttp, the kubeconfig's client
certificate (or token), JSON requests and watch streams. No retries, no cache, no library between the
program and the API server, so a limit program measures the API server, not a client.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[2]
Body = dict[str, Any]


def kubeconfig_path() -> Path:
    return Path(os.environ.get("KUBECONFIG") or ROOT / ".troupe" / "kubeconfig")


def _material(entry: dict[str, Any], key: str, tmp: Path) -> str | None:
    """A path for ``key`` (a file) or ``key-data`` (inline base64, written to a temporary file)."""
    if entry.get(key):
        return str(entry[key])
    data = entry.get(f"{key}-data")
    if not data:
        return None
    path = tmp / key
    path.write_bytes(base64.b64decode(data))
    return str(path)


class Api:
    def __init__(self, session: aiohttp.ClientSession, server: str) -> None:
        self.session = session
        self.server = server.rstrip("/")
        self.requests = 0  # every request sent, reads and writes
        self.writes = 0  # POST, PATCH, PUT, DELETE

    @classmethod
    async def connect(cls, limit: int = 100) -> Api:
        config = yaml.safe_load(kubeconfig_path().read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        tmp = Path(tempfile.mkdtemp(prefix="troupe-limit-"))
        ctx = ssl.create_default_context(cafile=_material(cluster, "certificate-authority", tmp))
        cert = _material(user, "client-certificate", tmp)
        if cert:
            ctx.load_cert_chain(cert, _material(user, "client-key", tmp))
        headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=limit),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        return cls(session, cluster["server"])

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Body | list[Any] | None = None,
        *,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Body:
        self.requests += 1
        if method != "GET":
            self.writes += 1
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self.server + path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            if response.status >= 400 and response.status not in ok:
                raise RuntimeError(f"{method} {path}: {response.status} {text[:300]}")
            if response.status >= 400 and not text.startswith("{"):
                # a group not served yet answers 404 with a plain "404 page not found"
                return {"kind": "Status", "code": response.status, "message": text.strip()}
            return json.loads(text) if text else {}

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[tuple[str, Body]]:
        """(type, object) of each event after ``resource_version``, until the server ends the stream."""
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "false"}
        self.requests += 1
        async with self.session.get(self.server + path, params=params) as response:
            if response.status != 200:
                raise RuntimeError(f"watch {path}: {response.status} {await response.text()}")
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]

    async def list_and_watch(self, path: str) -> AsyncIterator[tuple[str, Body]]:
        """Every object of ``path`` (as ADDED), then its changes, for as long as the caller iterates."""
        listing = await self.request("GET", path)
        for item in listing["items"]:
            yield "ADDED", item
        version = listing["metadata"]["resourceVersion"]
        while True:
            async for kind, obj in self.watch(path, version):
                if kind == "ERROR":  # 410 Gone: list again
                    listing = await self.request("GET", path)
                    for item in listing["items"]:
                        yield "MODIFIED", item
                    version = listing["metadata"]["resourceVersion"]
                    break
                version = obj["metadata"]["resourceVersion"]
                yield kind, obj
