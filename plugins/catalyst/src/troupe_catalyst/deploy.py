"""The long-running steps of an Environment, run by the core as actions: the image check and the deploy.

Both are idempotent and safe to run again after an operator restart: the image check only reads, the
deploy fetches the commit into a temporary directory and then ``ensure_release`` (pyhelm3) upgrades the
release only when chart or values differ from the deployed revision (it also repairs a release left
pending by a killed helm), or server-side applies the manifests. Neither ever deletes or uninstalls
anything: an error raises, the core records it, and the status hook decides when to retry.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import pathlib
import tempfile
import time
from typing import Any

import yaml

from troupe import OperatorHandle
from troupe_catalyst import registry
from troupe_catalyst.config import Settings

logger = logging.getLogger(__name__)

HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"


class DeployError(Exception):
    """A deploy step failed; ``reason`` is a short CamelCase cause (metrics label and condition reason)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


async def read_secret(handle: OperatorHandle, ref: list[str] | None) -> dict[str, str]:
    if not ref:
        return {}
    secret = await handle.kube.get("v1", "secrets", ref[0], ref[1])
    if secret is None:
        raise DeployError("SecretMissing", f"Secret {ref[0]}/{ref[1]} does not exist")
    return dict(secret.get("data") or {})


async def check_image(inputs: dict[str, Any], handle: OperatorHandle) -> dict[str, Any]:
    """The ``image`` action: whether ``inputs['image']`` exists in its registry."""
    image = registry.parse_repository(inputs["repository"], inputs["tag"])
    data = await read_secret(handle, inputs.get("secret"))
    credentials = registry.credentials_from_secret(data, image.registry) if data else None
    digest = await registry.image_exists(image, credentials, insecure=bool(inputs.get("insecure")))
    return {"exists": digest is not None, "digest": digest or ""}


async def run(*args: str, cwd: str | None = None, stdin: bytes | None = None, what: str = "") -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise DeployError(what or "CommandFailed", f"{args[0]} {args[1]}: {err.decode().strip()[-500:]}")
    return out


def git_auth(data: dict[str, str]) -> list[str]:
    """``-c http.extraHeader=...`` for the repository's Secret: never on the command line as a URL."""
    if not data:
        return []

    def text(key: str) -> str:
        return base64.b64decode(data[key]).decode() if data.get(key) else ""

    user = text("username") or "git"
    password = text("password") or text("token")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ["-c", f"http.extraHeader=Authorization: Basic {basic}"]


async def fetch(settings: Settings, url: str, commit: str, auth: list[str], into: str) -> None:
    """The repository at ``commit`` in ``into``: a shallow fetch of the commit, else of every branch."""
    git = settings.git
    await run(git, "init", "-q", into, what="GitFailed")
    try:
        await run(git, *auth, "-C", into, "fetch", "-q", "--depth=1", url, commit, what="GitFailed")
    except DeployError:  # a server refusing to serve a commit by id: fetch the branches, find it there
        await run(git, *auth, "-C", into, "fetch", "-q", url, "+refs/heads/*:refs/remotes/origin/*")
    await run(git, "-C", into, "checkout", "-q", "--detach", commit, what="GitFailed")


_helm_clients: dict[str, Any] = {}


def helm_client(executable: str) -> Any:
    from pyhelm3 import Client

    if executable not in _helm_clients:
        _helm_clients[executable] = Client(executable=executable)
    return _helm_clients[executable]


def helm_reason(exc: Exception) -> str:
    """A short, bounded cause of a helm failure (the metrics label)."""
    from pyhelm3 import errors

    for cls in (
        errors.ConnectionError,
        errors.ChartNotFoundError,
        errors.FailedToRenderChartError,
        errors.ResourceAlreadyExistsError,
        errors.InvalidResourceError,
        errors.ReleaseNotFoundError,
    ):
        if isinstance(exc, cls):
            return str(cls.__name__).removesuffix("Error")
    return "Other"


async def helm_deploy(settings: Settings, chart_dir: pathlib.Path, inputs: dict[str, Any]) -> int:
    from pyhelm3 import errors

    client = helm_client(settings.helm)
    try:
        chart = await client.get_chart(chart_dir)
        revision = await client.ensure_release(
            inputs["release"],
            chart,
            inputs["values"],
            namespace=inputs["namespace"],
            # the namespace is the operator's own child: helm never creates one
            create_namespace=False,
            timeout="5m",
        )
    except errors.Error as exc:
        raise DeployError(f"Helm{helm_reason(exc)}", f"helm: {str(exc).strip()[-600:]}") from exc
    return int(revision.revision)


WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"})
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def read_manifests(source: pathlib.Path) -> list[dict[str, Any]]:
    """Every object in the YAML/JSON files under ``source`` (a file or a directory), in path order."""
    files = (
        [source]
        if source.is_file()
        else sorted(p for p in source.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
    )
    docs: list[dict[str, Any]] = []
    for path in files:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return docs


def inject(docs: list[dict[str, Any]], image: str, env: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The first container of each workload's pod template runs ``image`` with ``env`` added (pure)."""
    out = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        template = (doc.get("spec") or {}).get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        if doc.get("kind") in WORKLOADS and containers:
            first = containers[0]
            if image:
                first["image"] = image
            names = {e["name"] for e in env}
            first["env"] = [e for e in first.get("env") or [] if e.get("name") not in names] + env
        out.append(doc)
    return out


async def apply_manifests(
    handle: OperatorHandle, settings: Settings, source: pathlib.Path, inputs: dict[str, Any]
) -> int:
    """Server-side apply of a plain YAML directory or a rendered kustomization, into the namespace.

    Through the API (no kubectl needed): each object's kind is looked up in the API's discovery, and a
    cluster-scoped one is refused (an environment's deploy stays in its namespace).
    """
    namespace = inputs["namespace"]
    if inputs["type"] == "kustomize":
        rendered = await run(settings.kubectl, "kustomize", str(source), what="KustomizeFailed")
        docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    else:
        docs = read_manifests(source)
    if not docs:
        raise DeployError("NothingToApply", f"no objects in {inputs['path']}")
    docs = inject(docs, inputs.get("image", ""), inputs.get("env") or [])
    discovered: dict[str, dict[str, tuple[str, bool]]] = {}
    for doc in docs:
        api_version, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        name = str((doc.get("metadata") or {}).get("name", ""))
        if api_version not in discovered:
            discovered[api_version] = await resources_of(handle, api_version)
        plural, namespaced = discovered[api_version].get(kind, ("", False))
        if not plural:
            raise DeployError("UnknownKind", f"{api_version} {kind} {name}: the API server does not serve it")
        if not namespaced:
            raise DeployError(
                "ClusterScoped",
                f"{kind} {name} is cluster-scoped: an environment deploys into its namespace only",
            )
        doc.setdefault("metadata", {})["namespace"] = namespace
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            await handle.kube.request(
                "PATCH",
                f"{prefix}/namespaces/{namespace}/{plural}/{name}",
                body=doc,
                query={"fieldManager": "troupe-catalyst-deploy", "force": "true"},
                content_type="application/apply-patch+yaml",
            )
        except Exception as exc:  # the manifest is wrong, or RBAC refuses: say which object
            raise DeployError("ApplyFailed", f"{kind} {name}: {getattr(exc, 'body', None) or exc}") from exc
    return len(docs)


async def resources_of(handle: OperatorHandle, api_version: str) -> dict[str, tuple[str, bool]]:
    """kind -> (plural, namespaced) of one group version, from the API's discovery."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    try:
        listing = await handle.kube.request("GET", path)
    except Exception as exc:
        raise DeployError("UnknownKind", f"{api_version}: {exc}") from exc
    return {
        r["kind"]: (r["name"], bool(r.get("namespaced")))
        for r in listing.get("resources") or []
        if "/" not in r["name"]
    }


async def workloads(handle: OperatorHandle, namespace: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for plural in ("deployments", "statefulsets"):
        listing = await handle.kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/{plural}")
        found += [{**item, "kind": plural} for item in listing.get("items") or []]
    return found


def not_ready(items: list[dict[str, Any]]) -> list[str]:
    """Workloads whose ready replicas are fewer than wanted (or whose controller has not caught up)."""
    waiting = []
    for item in items:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        wanted = spec.get("replicas", 1)
        caught_up = status.get("observedGeneration", 0) >= item["metadata"].get("generation", 0)
        if not caught_up or (status.get("readyReplicas") or 0) < wanted:
            waiting.append(
                f"{item['kind'][:-1]} {item['metadata']['name']} {status.get('readyReplicas') or 0}/{wanted}"
            )
    return waiting


async def wait_ready(handle: OperatorHandle, namespace: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while True:
        items = await workloads(handle, namespace)
        waiting = not_ready(items)
        if not waiting:
            return len(items)
        if time.monotonic() > deadline:
            raise DeployError("NotReady", "workloads not ready: " + ", ".join(waiting))
        await asyncio.sleep(2)


#: On a suspended workload: its replicas before, given back on resume (helm sees no change to redo).
SUSPENDED_ANNOTATION = "catalyst.dev/replicas-before-suspend"


async def scale_to_zero(handle: OperatorHandle, namespace: str) -> int:
    """Suspend: every Deployment and StatefulSet of the namespace (the environment's own) to 0 replicas."""
    items = await workloads(handle, namespace)
    for item in items:
        replicas = (item.get("spec") or {}).get("replicas", 1)
        if replicas == 0:
            continue
        patch = {"metadata": {"annotations": {SUSPENDED_ANNOTATION: str(replicas)}}, "spec": {"replicas": 0}}
        await _patch_workload(handle, namespace, item, patch)
    return len(items)


async def resume(handle: OperatorHandle, namespace: str) -> None:
    """Give suspended workloads their replicas back (a helm upgrade without changes would not)."""
    for item in await workloads(handle, namespace):
        before = (item["metadata"].get("annotations") or {}).get(SUSPENDED_ANNOTATION)
        if before is None:
            continue
        patch = {"metadata": {"annotations": {SUSPENDED_ANNOTATION: None}}, "spec": {"replicas": int(before)}}
        await _patch_workload(handle, namespace, item, patch)


async def _patch_workload(handle: OperatorHandle, namespace: str, item: dict[str, Any], patch: Any) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/{item['kind']}/{item['metadata']['name']}"
    await handle.kube.request("PATCH", path, body=patch, content_type="application/merge-patch+json")


async def deploy(inputs: dict[str, Any], handle: OperatorHandle, settings: Settings) -> dict[str, Any]:
    """The ``deploy`` action: fetch the commit, deploy it, wait for the workloads (or suspend them)."""
    namespace = inputs["namespace"]
    if inputs.get("suspend"):
        return {"suspended": await scale_to_zero(handle, namespace)}
    auth = git_auth(await read_secret(handle, inputs.get("secret")))
    with tempfile.TemporaryDirectory(prefix="catalyst-") as tmp:
        checkout = os.path.join(tmp, "src")
        await fetch(settings, inputs["repositoryUrl"], inputs["commit"], auth, checkout)
        source = (pathlib.Path(checkout) / inputs["path"]).resolve()
        if not source.is_relative_to(pathlib.Path(checkout).resolve()) or not source.exists():
            raise DeployError("PathMissing", f"{inputs['path']} does not exist at commit {inputs['commit']}")
        revision = 0
        if inputs["type"] == "helm":
            revision = await helm_deploy(settings, source, inputs)
        else:
            await apply_manifests(handle, settings, source, inputs)
    await resume(handle, namespace)
    ready = await wait_ready(handle, namespace, settings.ready_timeout)
    return {"revision": revision, "workloads": ready}


async def uninstall(settings: Settings, release: str, namespace: str) -> None:
    """Uninstall the release (finalizer): a release already gone is fine."""
    from pyhelm3 import errors

    try:
        await helm_client(settings.helm).uninstall_release(
            release, namespace=namespace, wait=True, timeout="2m"
        )
    except errors.Error as exc:
        raise DeployError(f"Helm{helm_reason(exc)}", f"helm uninstall: {str(exc).strip()[-400:]}") from exc
