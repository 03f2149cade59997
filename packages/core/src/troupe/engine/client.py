"""A small generic REST client for any resource, on top of kubernetes_asyncio's authenticated ApiClient."""

from __future__ import annotations

import json
import os
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

Manifest = dict[str, Any]
_OBJECT = {code: "object" for code in (200, 201, 202)}


class NotFound(Exception):
    pass


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")


class Kube:
    """The operator's API access. One instance per process; every call is a single HTTP request."""

    def __init__(self, api: k8s.ApiClient, field_manager: str) -> None:
        self.api = api
        self.field_manager = field_manager

    @classmethod
    async def connect(cls, field_manager: str) -> Kube:
        """Load the kubeconfig (``KUBECONFIG`` or ~/.kube/config) or the in-cluster ServiceAccount."""
        # KUBECONFIG is read now, not when kubernetes_asyncio was imported (it freezes its default then).
        path = os.environ.get("KUBECONFIG")
        if path:
            await k8s_config.load_kube_config(config_file=path)
        else:
            await k8s_config.load_config()
        return cls(k8s.ApiClient(), field_manager)

    async def connection_info(self) -> kopf.ConnectionInfo:
        """The same endpoint and credentials for kopf's own watches (it knows no kubernetes_asyncio).

        Asked again by kopf whenever its credentials stop working, so a rotated ServiceAccount token
        (re-read by the client's refresh hook) reaches kopf too.
        """
        cfg = self.api.configuration
        authorization = await cfg.get_api_key_with_prefix("BearerToken") or ""
        scheme, _, token = authorization.partition(" ")
        return kopf.ConnectionInfo(
            server=str(cfg.host),
            ca_path=cfg.ssl_ca_cert or None,
            insecure=not cfg.verify_ssl,
            scheme=scheme or None,
            token=token or None,
            certificate_path=cfg.cert_file or None,
            private_key_path=cfg.key_file or None,
        )

    async def close(self) -> None:
        await self.api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        try:
            result = await self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                response_types_map=_OBJECT,
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(path) from exc
            raise
        return result if isinstance(result, dict) else json.loads(result or "{}")

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> Manifest | None:
        try:
            return await self.request("GET", resource_path(api_version, plural, namespace, name))
        except NotFound:
            return None

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
