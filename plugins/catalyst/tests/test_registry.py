"""The image check against a small fake registry: Accept, basic auth, the bearer-token challenge."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from troupe_catalyst.registry import (
    MANIFEST_TYPES,
    Credentials,
    ImageRef,
    RegistryError,
    credentials_from_secret,
    image_exists,
    parse_repository,
)

TOKEN = "t0ken"
BASIC = "Basic " + base64.b64encode(b"ci:s3cret").decode()


def fake_registry(auth: str, present: dict[str, str], seen: list[dict[str, str]]) -> web.Application:
    """``auth``: none, basic or bearer; ``present``: tag -> media type of its manifest."""

    async def manifest(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        header = request.headers.get("Authorization", "")
        if auth == "basic" and header != BASIC:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        if auth == "bearer" and header != f"Bearer {TOKEN}":
            realm = f"http://{request.host}/token"
            challenge = f'Bearer realm="{realm}",service="fake",scope="repository:org/app:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        media = present.get(request.match_info["tag"])
        accepted = [a.strip() for a in request.headers.get("Accept", "").split(",")]
        if media is None or media not in accepted:  # what real registries do with an unaccepted type
            return web.Response(status=404)
        return web.Response(
            status=200, headers={"Docker-Content-Digest": "sha256:abc", "Content-Type": media}
        )

    async def token(request: web.Request) -> web.Response:
        seen.append({"token": "1", **request.query, "auth": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != BASIC:
            return web.Response(status=401)
        return web.json_response({"token": TOKEN})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/org/app/manifests/{tag}", manifest)
    app.router.add_get("/token", token)
    return app


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[TestServer, list[dict[str, str]]]]:
    auth, present = request.param
    seen: list[dict[str, str]] = []
    srv = TestServer(fake_registry(auth, present, seen), host="127.0.0.1")
    await srv.start_server()
    yield srv, seen
    await srv.close()


def ref(srv: TestServer, tag: str) -> ImageRef:
    return ImageRef(f"127.0.0.1:{srv.port}", "org/app", tag)


OCI_INDEX = MANIFEST_TYPES[0]


@pytest.mark.parametrize("server", [("bearer", {"abc": OCI_INDEX})], indirect=True)
async def test_bearer_challenge_is_answered_with_a_token(server: Any) -> None:
    srv, seen = server
    creds = Credentials("ci", "s3cret")
    assert await image_exists(ref(srv, "abc"), creds, insecure=True) == "sha256:abc"
    token_call = next(s for s in seen if s.get("token"))
    assert token_call["service"] == "fake" and token_call["scope"] == "repository:org/app:pull"
    assert token_call["auth"] == BASIC
    assert seen[-1]["Authorization"] == f"Bearer {TOKEN}"
    assert await image_exists(ref(srv, "missing"), creds, insecure=True) is None


@pytest.mark.parametrize("server", [("bearer", {"abc": OCI_INDEX})], indirect=True)
async def test_a_token_refused_is_an_error_not_an_absent_image(server: Any) -> None:
    srv, _ = server
    with pytest.raises(RegistryError, match="token service"):
        await image_exists(ref(srv, "abc"), Credentials("ci", "wrong"), insecure=True)


@pytest.mark.parametrize("server", [("basic", {"v1": MANIFEST_TYPES[3]})], indirect=True)
async def test_basic_auth_and_every_media_type_in_accept(server: Any) -> None:
    srv, seen = server
    assert await image_exists(ref(srv, "v1"), Credentials("ci", "s3cret"), insecure=True)
    accept = seen[-1]["Accept"]
    assert all(media in accept for media in MANIFEST_TYPES)
    with pytest.raises(RegistryError, match="needs credentials"):
        await image_exists(ref(srv, "v1"), None, insecure=True)
    with pytest.raises(RegistryError, match="refused the credentials"):
        await image_exists(ref(srv, "v1"), Credentials("ci", "nope"), insecure=True)


@pytest.mark.parametrize("server", [("none", {"oci": OCI_INDEX})], indirect=True)
async def test_an_oci_index_is_found_and_a_missing_tag_is_absent(server: Any) -> None:
    srv, _ = server
    assert await image_exists(ref(srv, "oci"), None, insecure=True) == "sha256:abc"
    assert await image_exists(ref(srv, "nope"), None, insecure=True) is None


async def test_an_unreachable_registry_is_an_error() -> None:
    with pytest.raises(RegistryError, match="unreachable"):
        await image_exists(ImageRef("127.0.0.1:9", "org/app", "x"), None, insecure=True, seconds=2)


def test_repositories_name_their_registry() -> None:
    assert parse_repository("registry.cluster.local/org/repo", "t") == ImageRef(
        "registry.cluster.local", "org/repo", "t"
    )
    assert parse_repository("127.0.0.1:5000/app", "t").registry == "127.0.0.1:5000"
    assert parse_repository("nginx", "1").name == "library/nginx"
    assert parse_repository("org/app", "1") == ImageRef("docker.io", "org/app", "1")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_credentials_from_dockerconfigjson_and_plain_keys() -> None:
    config = {
        "auths": {"https://reg.example": {"auth": b64("u:p")}, "other": {"username": "x", "password": "y"}}
    }
    data = {".dockerconfigjson": b64(json.dumps(config))}
    assert credentials_from_secret(data, "reg.example") == Credentials("u", "p")
    assert credentials_from_secret(data, "other") == Credentials("x", "y")
    assert credentials_from_secret(data, "elsewhere") is None
    assert credentials_from_secret({"username": b64("a"), "token": b64("t")}, "r") == Credentials("a", "t")
    assert credentials_from_secret({}, "r") is None
