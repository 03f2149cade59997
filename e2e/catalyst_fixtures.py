"""Loopback stand-ins for what the catalyst operator talks to: an OCI registry and a git server.

Nothing here needs a cluster. Each fixture starts its server in the test's tmp dir, on 127.0.0.1 and a
free port, and stops it after the test. ``e2e/conftest.py`` registers this module as a pytest plugin, so
any e2e test can ask for ``registry`` or ``git_server``; other scopes can use the context managers
:func:`running_registry` and :func:`served_git` with a directory of their own.

The API below is stable (the catalyst e2e tests build on it):

``registry`` -> :class:`Registry`: the reference ``distribution`` registry (``cmd/registry`` v3, built by
``tools/cluster/build.sh``: ``REGISTRY=`` of ``--env``), filesystem storage, htpasswd basic auth, plain HTTP.
  - ``host`` ``"127.0.0.1:<port>"`` (an image reference is ``f"{host}/{repository}:{tag}"``), ``url``
    ``"http://127.0.0.1:<port>"``, ``username``, ``password``, ``storage`` (a Path), ``running``;
  - ``stop()``, ``start()`` (same port, same storage; returns once ``/v2/`` answers), ``restart()``, and
    ``with registry.down(): ...`` (stopped inside the block, started again after it);
  - ``push_image(repository, tag, kind="oci") -> digest``: pushes a tiny valid image (config blob, one
    gzipped layer, manifest) through the distribution HTTP API with basic auth, standing for a build
    Job's push. ``kind``: ``"oci"`` (OCI image manifest), ``"oci-index"`` (OCI index over one),
    ``"docker"`` (Docker v2 manifest), ``"docker-list"`` (Docker manifest list over one);
  - ``tag_exists(repository, tag, accept=MANIFEST_MEDIA_TYPES) -> bool`` and
    ``manifest_digest(...) -> str | None``: ``HEAD /v2/<repository>/manifests/<tag>`` with those media
    types in ``Accept`` (all four by default: with one missing, an image of that type looks absent);
  - ``docker_config_json() -> str``: a ``.dockerconfigjson`` for a ``kubernetes.io/dockerconfigjson``
    Secret; ``basic_auth() -> str``: the ``Authorization`` header value.

``git_server`` -> :class:`GitServer`: a bare repository ``app.git`` served over smart HTTP
(``git http-backend`` behind a threaded HTTP server) with basic auth, clone and push. Its first commit is
``e2e/fixtures/catalyst-app`` (see its README: ``charts/app``, ``Dockerfile``, ``deploy/``,
``kustomize/``) on branch ``main``.
  - ``url`` ``"http://127.0.0.1:<port>/app.git"``, ``username``, ``password``, ``branch`` (``"main"``),
    ``first_commit`` (its sha), ``url_with_credentials()``, ``basic_auth()`` (the header value);
  - ``commit(message, changes, branch=None) -> sha``: writes ``changes`` (path relative to the
    repository root -> ``str``/``bytes`` content, or ``None`` to delete) as a new commit on ``branch``
    (default ``main``; a new branch starts from ``main``'s head) and publishes it;
  - ``head(branch=None) -> sha``; ``start_daemon() -> "git://127.0.0.1:<port>/app.git"`` (``git daemon``,
    read-only, no auth), stopped with the server.

Plain helpers: :func:`push_image`, :func:`manifest_digest`, :func:`tag_exists` (any registry URL and
credentials), :func:`git` (runs git with :func:`git_env`: no prompt, no user or system config),
:data:`MANIFEST_MEDIA_TYPES` and the four media type constants, :data:`APP_DIR`.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from harness import BINARIES, ROOT, free_port

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: every manifest type an image tag can resolve to; a HEAD without one of them misses images of that type
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)

#: the app the git server's first commit holds
APP_DIR = ROOT / "e2e" / "fixtures" / "catalyst-app"
REGISTRY_BINARY = os.environ.get("TROUPE_REGISTRY") or BINARIES.get("REGISTRY", "")

# ------------------------------------------------------------------------------------------- registry


class RegistryError(RuntimeError):
    """The registry answered with a status the caller did not expect."""


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _call(
    url: str,
    method: str,
    path: str,
    auth: str | None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request to ``url`` (``http://host:port``): status, headers (lower-case names), body."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        all_headers = {**(headers or {}), **({"Authorization": auth} if auth else {})}
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _expect(status: int, want: int, what: str, body: bytes) -> None:
    if status != want:
        raise RegistryError(f"{what}: HTTP {status} (want {want}): {body[:500]!r}")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(url: str, auth: str, repository: str, data: bytes) -> str:
    """Upload a blob (POST then PUT, the two-step upload every registry supports); its digest."""
    digest = _digest(data)
    status, _, _ = _call(url, "HEAD", f"/v2/{repository}/blobs/{digest}", auth)
    if status == 200:
        return digest
    status, headers, body = _call(url, "POST", f"/v2/{repository}/blobs/uploads/", auth)
    _expect(status, 202, f"start upload to {repository}", body)
    location = urllib.parse.urlsplit(headers["location"])
    query = "&".join(q for q in (location.query, urllib.parse.urlencode({"digest": digest})) if q)
    status, _, body = _call(
        url,
        "PUT",
        f"{location.path}?{query}",
        auth,
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _expect(status, 201, f"upload blob {digest} to {repository}", body)
    return digest


def _put_manifest(url: str, auth: str, repository: str, reference: str, media_type: str, doc: Any) -> str:
    data = json.dumps(doc, separators=(",", ":")).encode()
    status, headers, body = _call(
        url, "PUT", f"/v2/{repository}/manifests/{reference}", auth, data, {"Content-Type": media_type}
    )
    _expect(status, 201, f"put manifest {repository}:{reference}", body)
    return headers.get("docker-content-digest") or _digest(data)


def _layer(text: str) -> tuple[bytes, str]:
    """A reproducible gzipped tar holding one file: (blob, diff id of the uncompressed tar)."""
    raw = io.BytesIO()
    content = text.encode()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("catalyst-e2e.txt")
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), _digest(tar_bytes)


def push_image(url: str, repository: str, tag: str, username: str, password: str, kind: str = "oci") -> str:
    """Push a tiny image to ``url`` as ``repository:tag``; the digest of what the tag points to.

    ``kind``: ``oci``, ``oci-index``, ``docker`` or ``docker-list`` (see the module docstring). The layer
    holds ``repository:tag``, so different tags are different images.
    """
    if kind not in ("oci", "oci-index", "docker", "docker-list"):
        raise ValueError(f"kind {kind!r}: want oci, oci-index, docker or docker-list")
    auth = _basic(username, password)
    docker = kind.startswith("docker")
    layer, diff_id = _layer(f"{repository}:{tag}\n")
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        separators=(",", ":"),
    ).encode()
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json"
            if docker
            else "application/vnd.oci.image.config.v1+json",
            "digest": _push_blob(url, auth, repository, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"
                if docker
                else "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": _push_blob(url, auth, repository, layer),
                "size": len(layer),
            }
        ],
    }
    if kind in ("oci", "docker"):
        return _put_manifest(url, auth, repository, tag, manifest_type, manifest)
    # an index/list: its one image manifest goes by digest first, then the index under the tag
    data = json.dumps(manifest, separators=(",", ":")).encode()
    child = _put_manifest(url, auth, repository, _digest(data), manifest_type, manifest)
    index_type = DOCKER_LIST if docker else OCI_INDEX
    index = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            {
                "mediaType": manifest_type,
                "digest": child,
                "size": len(data),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    return _put_manifest(url, auth, repository, tag, index_type, index)


def manifest_digest(
    url: str,
    repository: str,
    tag: str,
    username: str | None = None,
    password: str | None = None,
    accept: Sequence[str] = MANIFEST_MEDIA_TYPES,
) -> str | None:
    """``HEAD /v2/<repository>/manifests/<tag>``: the digest, or None when the registry says 404.

    Any other answer raises :class:`RegistryError`; an unreachable registry raises ``OSError``.
    """
    auth = _basic(username, password) if username is not None and password is not None else None
    status, headers, _ = _call(
        url, "HEAD", f"/v2/{repository}/manifests/{tag}", auth, headers={"Accept": ", ".join(accept)}
    )
    if status == 404:
        return None
    _expect(status, 200, f"HEAD {repository}:{tag}", b"")
    return headers.get("docker-content-digest", "")


def tag_exists(
    url: str,
    repository: str,
    tag: str,
    username: str | None = None,
    password: str | None = None,
    accept: Sequence[str] = MANIFEST_MEDIA_TYPES,
) -> bool:
    return manifest_digest(url, repository, tag, username, password, accept) is not None


def _write_htpasswd(path: Path, username: str, password: str) -> None:
    # cost 4 (bcrypt's minimum): every request is checked against it; this is a test credential
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{username}:{hashed}\n")


@dataclass
class Registry:
    """A ``distribution`` registry process (see the module docstring)."""

    directory: Path
    port: int
    username: str
    password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def storage(self) -> Path:
        return self.directory / "storage"

    @property
    def log_path(self) -> Path:
        return self.directory / "registry.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _write_config(self) -> Path:
        self.storage.mkdir(parents=True, exist_ok=True)
        htpasswd = self.directory / "htpasswd"
        if not htpasswd.exists():
            _write_htpasswd(htpasswd, self.username, self.password)
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "catalyst-e2e", "path": str(htpasswd)}},
        }
        path = self.directory / "config.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 20) -> None:
        """Start (again) on the same port with the same storage; returns once ``/v2/`` answers 401."""
        if self.running:
            return
        if not REGISTRY_BINARY or not os.access(REGISTRY_BINARY, os.X_OK):
            raise RuntimeError(
                f"no registry binary at {REGISTRY_BINARY!r}: run `make cluster-binaries` "
                "(or `bash tools/cluster/build.sh registry`)"
            )
        config = self._write_config()
        # as in the upstream image: else it tries to send traces to an OTLP collector that is not there
        env = {**os.environ, "OTEL_TRACES_EXPORTER": "none"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"the registry exited:\n{self.tail()}")
            with contextlib.suppress(OSError):
                status, _, _ = _call(self.url, "GET", "/v2/", None)
                if status == 401:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the registry did not answer on {self.url} in {timeout}s:\n{self.tail()}")
            time.sleep(0.05)

    def stop(self, grace: float = 5) -> None:
        """Stop the process (SIGTERM, then SIGKILL); the storage stays."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        """``with registry.down(): ...``: unreachable inside the block, serving the same storage after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def basic_auth(self) -> str:
        return _basic(self.username, self.password)

    def docker_config_json(self) -> str:
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        entry = {"username": self.username, "password": self.password, "auth": auth}
        return json.dumps({"auths": {self.host: entry}})

    def push_image(self, repository: str, tag: str, kind: str = "oci") -> str:
        return push_image(self.url, repository, tag, self.username, self.password, kind)

    def manifest_digest(
        self, repository: str, tag: str, accept: Sequence[str] = MANIFEST_MEDIA_TYPES
    ) -> str | None:
        return manifest_digest(self.url, repository, tag, self.username, self.password, accept)

    def tag_exists(self, repository: str, tag: str, accept: Sequence[str] = MANIFEST_MEDIA_TYPES) -> bool:
        return self.manifest_digest(repository, tag, accept) is not None


@contextlib.contextmanager
def running_registry(directory: Path, username: str = "catalyst") -> Iterator[Registry]:
    """A started :class:`Registry` keeping its files in ``directory``; stopped on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    reg = Registry(directory, free_port(), username, secrets.token_urlsafe(12))
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


# ------------------------------------------------------------------------------------------- git


def git_env(**extra: str) -> dict[str, str]:
    """An environment for git that never prompts and reads no user or system configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GIT_AUTHOR_NAME="catalyst e2e",
        GIT_AUTHOR_EMAIL="e2e@catalyst.invalid",
        GIT_COMMITTER_NAME="catalyst e2e",
        GIT_COMMITTER_EMAIL="e2e@catalyst.invalid",
    )
    env.update(extra)
    return env


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``git`` with :func:`git_env`; raises with git's stderr when ``check`` and it fails."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, project_root: Path, username: str, password: str, log_path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _GitHandler)
        self.project_root = project_root
        self.authorization = _basic(username, password)
        self.log_path = log_path
        self.log_lock = threading.Lock()


class _GitHandler(BaseHTTPRequestHandler):
    """Smart HTTP: every request runs ``git http-backend`` as a CGI, behind basic auth."""

    server: _GitHTTPServer

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def log_message(self, format: str, *args: Any) -> None:
        with self.server.log_lock, open(self.server.log_path, "a") as log:
            log.write(f"{self.address_string()} {format % args}\n")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()  # the empty trailer
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _backend(self) -> None:
        if self.headers.get("Authorization") != self.server.authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="catalyst-e2e"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "catalyst",  # authenticated: http-backend then also allows pushes
            "REMOTE_ADDR": self.client_address[0],
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
        out = proc.stdout
        # CGI output: header lines, an empty line, the payload (git writes CRLF; accept LF too)
        ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := out.find(sep)) >= 0]
        if proc.returncode != 0 or not ends:
            self.send_error(500, f"git http-backend: {proc.stderr.decode(errors='replace')[:300]}")
            return
        i, n = min(ends)
        status, headers = 200, []
        for line in out[:i].decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        payload = out[i + n :]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@dataclass
class GitServer:
    """A bare repository served over smart HTTP with basic auth (see the module docstring)."""

    directory: Path
    username: str
    password: str
    branch: str = "main"
    first_commit: str = ""
    _http: _GitHTTPServer | None = None
    _daemon: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def repositories(self) -> Path:
        return self.directory / "repos"

    @property
    def bare(self) -> Path:
        return self.repositories / "app.git"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def port(self) -> int:
        assert self._http is not None, "the git server is not started"
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/app.git"

    def basic_auth(self) -> str:
        """The ``Authorization`` header value (e.g. for ``git -c http.extraHeader=...``)."""
        return _basic(self.username, self.password)

    def url_with_credentials(self) -> str:
        user, password = (urllib.parse.quote(s, safe="") for s in (self.username, self.password))
        return f"http://{user}:{password}@127.0.0.1:{self.port}/app.git"

    def init(self, app: Path = APP_DIR) -> None:
        """The bare repository, and a work tree whose first commit is ``app``'s files."""
        self.repositories.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "--bare", "-b", self.branch, str(self.bare))
        shutil.copytree(app, self.work)
        git("init", "-q", "-b", self.branch, cwd=self.work)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)
        self.first_commit = self._commit_all("The app: a Helm chart, a Dockerfile, plain YAML and kustomize")

    def _commit_all(self, message: str) -> str:
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        branch = git("rev-parse", "--abbrev-ref", "HEAD", cwd=self.work).stdout.strip()
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work).stdout.strip()

    def commit(
        self, message: str, changes: Mapping[str, str | bytes | None], branch: str | None = None
    ) -> str:
        """A new commit on ``branch`` (default: ``main``) with ``changes`` applied; its sha."""
        with self._lock:
            target = branch or self.branch
            known = git("rev-parse", "--verify", "-q", f"refs/heads/{target}", cwd=self.work, check=False)
            if known.returncode == 0:
                git("checkout", "-q", target, cwd=self.work)
            else:
                git("checkout", "-q", "-b", target, self.branch, cwd=self.work)
            for rel, content in changes.items():
                path = self.work / rel
                if content is None:
                    path.unlink()
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(content)
            return self._commit_all(message)

    def head(self, branch: str | None = None) -> str:
        return git("rev-parse", f"refs/heads/{branch or self.branch}", cwd=self.bare).stdout.strip()

    def start(self) -> None:
        self._http = _GitHTTPServer(
            self.repositories, self.username, self.password, self.directory / "http.log"
        )
        threading.Thread(target=self._http.serve_forever, name="git-http", daemon=True).start()

    def start_daemon(self, timeout: float = 10) -> str:
        """Also serve the repositories read-only over ``git://`` (no auth); the clone URL."""
        port = free_port()
        with open(self.directory / "daemon.log", "ab") as log:
            self._daemon = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    "--listen=127.0.0.1",
                    f"--port={port}",
                    f"--base-path={self.repositories}",
                    "--export-all",
                    "--informative-errors",
                    str(self.repositories),
                ],
                env=git_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"git://127.0.0.1:{port}/app.git"
            if self._daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"git daemon did not listen on {port}: see {self.directory / 'daemon.log'}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._daemon is not None and self._daemon.poll() is None:
            os.killpg(self._daemon.pid, signal.SIGTERM)
            self._daemon.wait(10)


@contextlib.contextmanager
def served_git(directory: Path, username: str = "catalyst", app: Path = APP_DIR) -> Iterator[GitServer]:
    """A started :class:`GitServer` keeping its files in ``directory``; stopped on exit."""
    server = GitServer(directory, username, secrets.token_urlsafe(12))
    server.init(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A ``distribution`` registry on loopback with htpasswd auth, stopped after the test."""
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """``app.git`` (e2e/fixtures/catalyst-app) over smart HTTP with basic auth, stopped after the test."""
    with served_git(tmp_path_factory.mktemp("git")) as server:
        yield server
