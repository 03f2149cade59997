"""Does ``<repository>:<tag>`` exist? The OCI distribution API's ``HEAD /v2/<name>/manifests/<tag>``.

Every manifest media type is in ``Accept``: a registry answers 404 for a manifest whose type the client
did not accept, so leaving out the OCI index would make a multi-arch OCI image look absent. Basic auth is
sent when the registry asks for it; a ``Bearer`` challenge is answered with a token from its realm
(Docker's token protocol: ``GET realm?service=...&scope=repository:<name>:pull`` with the credentials).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

import aiohttp

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
DEFAULT_REGISTRY = "docker.io"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry could not say whether the image exists (unreachable, refused our credentials)."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}:{self.tag}"


def parse_repository(repository: str, tag: str) -> ImageRef:
    """``registry.example/org/app`` → registry and name (Docker Hub when the first part is no host)."""
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ImageRef(first, rest, tag)
    name = repository if "/" in repository else f"library/{repository}"
    return ImageRef(DEFAULT_REGISTRY, name, tag)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def credentials_from_secret(data: dict[str, str], registry: str) -> Credentials | None:
    """Credentials in a Secret's (base64) data: ``.dockerconfigjson`` for ``registry``, or username and
    password."""

    def text(key: str) -> str:
        return base64.b64decode(data.get(key, "")).decode() if data.get(key) else ""

    if data.get(".dockerconfigjson"):
        auths = json.loads(text(".dockerconfigjson")).get("auths", {})
        for host, entry in auths.items():
            if host.removeprefix("https://").removeprefix("http://").rstrip("/") != registry:
                continue
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return Credentials(user, password)
            return Credentials(entry.get("username", ""), entry.get("password", ""))
        return None
    if text("username"):
        return Credentials(text("username"), text("password") or text("token"))
    return None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(params))


async def image_exists(
    image: ImageRef,
    credentials: Credentials | None = None,
    *,
    insecure: bool = False,
    seconds: float = 20.0,
) -> str | None:
    """The image's digest when the tag exists, None when it does not; RegistryError when unknown."""
    scheme = "http" if insecure else "https"
    url = f"{scheme}://{image.registry}/v2/{image.name}/manifests/{image.tag}"
    headers = {"Accept": ACCEPT}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session:
            async with session.head(url, headers=headers) as resp:
                status, challenge = resp.status, resp.headers.get("WWW-Authenticate", "")
                digest_header = resp.headers.get("Docker-Content-Digest", "")
            if status == 401:
                headers["Authorization"] = await _authorization(session, image, credentials, challenge)
                async with session.head(url, headers=headers) as resp:
                    status, digest_header = resp.status, resp.headers.get("Docker-Content-Digest", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RegistryError(f"registry {image.registry} unreachable: {exc or type(exc).__name__}") from exc
    if status == 200:
        return digest_header or "present"
    if status == 404:
        return None
    if status in (401, 403):
        raise RegistryError(f"registry {image.registry} refused the credentials for {image.name} ({status})")
    raise RegistryError(f"registry {image.registry} answered {status} for {image}")


async def _authorization(
    session: aiohttp.ClientSession, image: ImageRef, credentials: Credentials | None, challenge: str
) -> str:
    scheme, params = parse_challenge(challenge)
    if scheme == "basic":
        if credentials is None:
            raise RegistryError(f"registry {image.registry} needs credentials (spec.build.registrySecretRef)")
        return credentials.basic()
    if scheme != "bearer" or "realm" not in params:
        raise RegistryError(f"registry {image.registry} asked for unknown authentication {challenge!r}")
    query = {"scope": params.get("scope") or f"repository:{image.name}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    token_headers = {"Authorization": credentials.basic()} if credentials else {}
    async with session.get(params["realm"], params=query, headers=token_headers) as resp:
        if resp.status != 200:
            raise RegistryError(f"token service {params['realm']} answered {resp.status}")
        body = await resp.json(content_type=None)
    token = body.get("token") or body.get("access_token")
    if not token:
        raise RegistryError(f"token service {params['realm']} returned no token")
    return f"Bearer {token}"
