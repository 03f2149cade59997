"""A small generic REST client for any resource: aiohttp (which kopf uses too) and the credentials of a
kubeconfig or the in-cluster ServiceAccount, read by kopf's own login functions.

Not kubernetes_asyncio: its generated models (about 860 modules) cost 66 MiB of memory and seconds of start
on a loaded machine, for a client that only ever sends and receives JSON dicts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import kopf
import orjson
import yaml
from yarl import URL

Manifest = dict[str, Any]
logger = logging.getLogger(__name__)
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class ApiException(Exception):
    """The API server answered with an error status; ``body`` is its JSON Status, as text."""

    def __init__(self, status: int | None = None, reason: str | None = None, body: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        super().__init__(f"({status}) {reason}")


class NotFound(Exception):
    pass


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")


def login() -> kopf.ConnectionInfo:
    """The endpoint and credentials: ``KUBECONFIG``, else the in-cluster ServiceAccount, else
    ~/.kube/config. Read anew on each call, so a rotated token or a renewed certificate is picked up."""
    settings = kopf.OperatorSettings()
    if not os.environ.get("KUBECONFIG") and SERVICE_ACCOUNT_TOKEN.exists():
        info = kopf.login_with_service_account(settings=settings)
        if info is not None:
            host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
            if host and port:  # the kubelet's address of the API server, as client-go uses it
                host = f"[{host}]" if ":" in host else host
                info = _with(info, server=f"https://{host}:{port}")
            return info
    info = kopf.login_with_kubeconfig(settings=settings)
    if info is None:
        raise kopf.LoginError("no KUBECONFIG, ~/.kube/config or in-cluster ServiceAccount to connect with")
    return _with_exec(_absolute(info))


def _with(info: kopf.ConnectionInfo, **changes: Any) -> kopf.ConnectionInfo:
    return dataclasses.replace(info, **changes)


def _kubeconfig() -> Path:
    first = (os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]
    return Path(first).expanduser()


def _absolute(info: kopf.ConnectionInfo) -> kopf.ConnectionInfo:
    """File paths of a kubeconfig are relative to the kubeconfig itself (kopf reads them as given)."""
    base = _kubeconfig().parent
    changes = {
        field: str(base / str(value))
        for field in ("ca_path", "certificate_path", "private_key_path")
        if (value := getattr(info, field)) and not os.path.isabs(str(value))
    }
    return _with(info, **changes) if changes else info


def _with_exec(info: kopf.ConnectionInfo) -> kopf.ConnectionInfo:
    """A user that gets its token from a command (``users[].user.exec``: cloud CLIs): run it."""
    if info.token or info.certificate_path or info.certificate_data:
        return info
    config = yaml.safe_load(_kubeconfig().read_text()) or {}
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    user = next(u.get("user") or {} for u in config.get("users") or [] if u["name"] == context["user"])
    spec = user.get("exec")
    if not spec:
        return info
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    out = subprocess.run(
        [spec["command"], *(spec.get("args") or [])], env=env, capture_output=True, check=True, timeout=60
    ).stdout
    status = json.loads(out).get("status") or {}
    return _with(
        info,
        token=status.get("token"),
        certificate_data=status.get("clientCertificateData"),
        private_key_data=status.get("clientKeyData"),
    )


class Kube:
    """The operator's API access. One instance per process; every call is a single HTTP request (one
    more, after logging in again, when the credentials expired)."""

    def __init__(self, info: kopf.ConnectionInfo, field_manager: str) -> None:
        self.field_manager = field_manager
        self.info = info
        self.session = self._session(info)
        # Watches hold their connection for minutes, one per stream (a kind in each watched namespace):
        # in the requests' pool of 32 they could take every slot and starve the writes.
        self.watch_session = self._session(info, limit=0)

    @staticmethod
    def _session(info: kopf.ConnectionInfo, limit: int = 32) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            # Each open TLS connection holds a 128 KiB buffer: unbounded, a burst left 130 of them (16 MiB).
            # 32 requests in flight are more than two cores' API server answers at once.
            connector=aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=limit),
            cookie_jar=aiohttp.DummyCookieJar(),  # the API server sets none; no jar to filter per request
            headers={**info.as_http_headers(), "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=60, sock_connect=10),
        )

    @classmethod
    async def connect(cls, field_manager: str) -> Kube:
        """Connect with :func:`login`'s credentials (read when called: ``KUBECONFIG`` may change)."""
        return cls(login(), field_manager)

    async def connection_info(self) -> kopf.ConnectionInfo:
        """The same endpoint and credentials for kopf's own watches.

        Asked again by kopf whenever its credentials stop working, so a rotated ServiceAccount token
        reaches kopf too.
        """
        await self._relogin()
        return self.info

    async def _relogin(self) -> None:
        info = login()
        if info != self.info:
            old, self.session, self.info = self.session, self._session(info), info
            old_watches, self.watch_session = self.watch_session, self._session(info, limit=0)
            await old.close()
            await old_watches.close()

    async def close(self) -> None:
        await self.session.close()
        await self.watch_session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        # Encoded here: given a str and params, aiohttp parses, quotes and merges them on every request.
        target = path + (f"?{urlencode(query)}" if query else "")
        for attempt in (1, 2):
            async with self.session.request(
                method,
                URL(self.info.server.rstrip("/") + target, encoded=True),
                # orjson: encoding and decoding every body is a large share of the operator's CPU
                # (the stdlib's json took about a tenth of it in a burst); it reads bytes, no text step.
                data=None if body is None else orjson.dumps(body),
                headers={"Content-Type": content_type},
            ) as response:
                raw = await response.read()
                if response.status == 401 and attempt == 1:  # a token rotated under us: read it again
                    await self._relogin()
                    continue
                if response.status == 404:
                    raise NotFound(path)
                if response.status >= 400:
                    text = raw.decode(errors="replace")
                    raise ApiException(status=response.status, reason=response.reason, body=text)
                result: Manifest = orjson.loads(raw) if raw else {}
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def watch(
        self, path: str, query: dict[str, str], *, read_timeout: float
    ) -> AsyncIterator[Manifest]:
        """The events of a watch request, one JSON object each, until the server ends the stream.

        ``read_timeout``: the longest silence before giving up on the connection (the server sends a
        bookmark at least every minute when asked to). Lines are split here, not by aiohttp's readline,
        whose 64 KiB line limit a large object exceeds.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)
        for attempt in (1, 2):
            url = self.info.server.rstrip("/") + path
            session = self.watch_session
            async with session.get(url, params={**query, "watch": "true"}, timeout=timeout) as response:
                if response.status == 401 and attempt == 1:
                    await self._relogin()
                    continue
                if response.status == 404:
                    raise NotFound(path)
                if response.status >= 400:
                    text = await response.text()
                    raise ApiException(status=response.status, reason=response.reason, body=text)
                pending = b""
                async for chunk in response.content.iter_any():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield orjson.loads(line)
                return

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Manifest | None:
        try:
            return await self.request("GET", resource_path(api_version, plural, namespace, name))
        except NotFound:
            return None

    async def create(self, manifest: Manifest, plural: str, namespace: str | None) -> Manifest:
        """Create ``manifest`` with the operator's field manager; 409 when its name is taken.

        Cheaper for the API server than an apply that creates (about 1.4 ms of its CPU less per object),
        but the fields are recorded as an ``Update`` of the field manager: see
        :func:`troupe.engine.apply.as_applied`, which makes them the apply's before the first apply.
        """
        path = resource_path(manifest["apiVersion"], plural, namespace)
        return await self.request("POST", path, body=manifest, query={"fieldManager": self.field_manager})

    async def apply(
        self, manifest: Manifest, plural: str, namespace: str | None, *, force: bool = False
    ) -> Manifest:
        """Server-side apply with the operator's field manager.

        ``force`` takes over fields another manager set; only for objects the operator itself created.
        Without it a field another manager holds with another value is a 409 Conflict.
        """
        path = resource_path(manifest["apiVersion"], plural, namespace, manifest["metadata"]["name"])
        return await self.request(
            "PATCH",
            path,
            body=manifest,
            query={"fieldManager": self.field_manager, "force": "true" if force else "false"},
            content_type="application/apply-patch+yaml",
        )

    async def patch_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> Manifest:
        path = resource_path(api_version, plural, namespace, name) + "/status"
        return await self.request(
            "PATCH", path, body={"status": status}, content_type="application/merge-patch+json"
        )

    async def json_patch(
        self, api_version: str, plural: str, namespace: str | None, name: str, ops: list[dict[str, Any]]
    ) -> Manifest:
        """An RFC 6902 patch: its ``test`` operations make it conditional (a 422 when one fails)."""
        path = resource_path(api_version, plural, namespace, name)
        return await self.request("PATCH", path, body=ops, content_type="application/json-patch+json")

    async def delete(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str = "Background",
        grace_seconds: int | None = None,
        uid: str | None = None,
    ) -> bool:
        """Delete an object; False when it was already gone (or, given ``uid``, replaced by another)."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource_path(api_version, plural, namespace, name), body=body)
        except NotFound:
            return False
        except ApiException as exc:
            if exc.status == 409 and uid:  # the uid precondition failed: not the object we meant
                return False
            raise
        return True
