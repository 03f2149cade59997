"""The REST client: credentials from a kubeconfig, errors as the engine expects them, no heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from troupe.engine.client import ApiException, Kube, NotFound, login


def test_the_operator_imports_no_kubernetes_client_library() -> None:
    # kopf imports every installed client library at its import; kubernetes_asyncio alone was 66 MiB.
    code = "import sys, troupe.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('kubernetes', 'kubernetes_asyncio', 'pykube')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def kubeconfig(tmp_path: Path, server: str, user: dict[str, object], ca: str | None = "pki/ca.crt") -> Path:
    import yaml

    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {"server": server, **({"certificate-authority": ca} if ca else {})},
                    }
                ],
                "users": [{"name": "u", "user": user}],
            }
        )
    )
    return path


def test_kubeconfig_paths_are_relative_to_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kubeconfig(
        tmp_path, "https://127.0.0.1:6443", {"client-certificate": "pki/a.crt", "client-key": "a.key"}
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    info = login()
    assert info.server == "https://127.0.0.1:6443"
    assert (info.ca_path, info.certificate_path) == (
        str(tmp_path / "pki/ca.crt"),
        str(tmp_path / "pki/a.crt"),
    )
    assert info.private_key_path == str(tmp_path / "a.key")


def test_a_token_from_an_exec_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = '{"kind": "ExecCredential", "status": {"token": "from-exec"}}'
    user = {"exec": {"command": sys.executable, "args": ["-c", f"print({status!r})"]}}
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path, "https://h:1", user)))
    assert login().token == "from-exec"


async def test_requests_errors_and_a_rotated_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str | None]] = []
    queries: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path_qs, request.headers.get("Authorization")))
        queries.append(dict(request.query))
        if request.headers.get("Authorization") != "Bearer new":
            return web.json_response({"message": "expired"}, status=401)
        if request.path.endswith("/gone"):
            return web.json_response({"message": "not found"}, status=404)
        if request.path.endswith("/taken"):
            return web.json_response({"message": "name is taken"}, status=409, reason="Conflict")
        return web.json_response({"got": await request.json() if request.can_read_body else None})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{port}", {"token": "old"}, ca=None)
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube = await Kube.connect(field_manager="t")
    try:
        config.write_text(config.read_text().replace("token: old", "token: new"))  # rotated
        got = await kube.request("PATCH", "/api/v1/x", body={"a": 1}, query={"fieldManager": "t"})
        assert got == {"got": {"a": 1}}
        assert [s[2] for s in seen] == ["Bearer old", "Bearer new"]  # read again after the 401, then sent
        assert seen[-1][1] == "/api/v1/x?fieldManager=t"
        # a query reaches the server as given, whatever it holds (a selector, a continue token)
        query = {"labelSelector": "a in (b, c),d!=e", "continue": "eyJ+/=?&x"}
        await kube.request("GET", "/api/v1/x", query=query)
        assert queries[-1] == query
        assert await kube.get("v1", "configmaps", "ns", "gone") is None
        with pytest.raises(NotFound):
            await kube.request("GET", "/api/v1/namespaces/ns/configmaps/gone")
        with pytest.raises(ApiException) as refused:
            await kube.request("POST", "/api/v1/namespaces/ns/configmaps/taken", body={})
        assert (refused.value.status, refused.value.reason) == (409, "Conflict")
        assert "name is taken" in (refused.value.body or "")
    finally:
        await kube.close()
        await runner.cleanup()
