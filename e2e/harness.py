"""The Troupe e2e harness: which cluster to use, kubectl, helm (pyhelm3), operators as ServiceAccounts.

Loaded as a pytest plugin (``e2e/conftest.py`` registers it; ``make e2e`` passes ``-p harness`` so tests
under ``plugins/*/tests`` get the same fixtures). Everything here is synchronous and drives the kubectl
built by ``tools/cluster/build.sh`` -- the simplest thing that is robust in tests.

Cluster choice, in order (see docs/cluster.md):
  1. ``TROUPE_E2E_KUBECONFIG`` or ``KUBECONFIG`` pointing at a kubeconfig that answers (kind, k3d, a cloud);
  2. testcontainers' ``K3sContainer`` when a Docker engine answers a ``/_ping``;
  3. the local control plane (``tools/cluster/cluster.sh up``), torn down at the end of the session unless
     it was already running when the session started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = ROOT / "tools" / "cluster"
STATE_DIR = ROOT / ".troupe"
LOCAL_KUBECONFIG = STATE_DIR / "kubeconfig"

# ------------------------------------------------------------------------------------------- binaries


def _binaries() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(CLUSTER_DIR / "build.sh"), "--env"], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


BINARIES = _binaries()
KUBECTL = os.environ.get("TROUPE_KUBECTL") or BINARIES["KUBECTL"]
HELM = os.environ.get("TROUPE_HELM") or BINARIES["HELM"]

#: the kubeconfig every helper uses unless told otherwise; the ``cluster`` fixture sets it.
current_kubeconfig: str | None = None


class KubectlError(RuntimeError):
    pass


def kubectl_argv(*args: str, kubeconfig: str | os.PathLike[str] | None = None) -> list[str]:
    """The command line of the built kubectl against the test cluster (or ``kubeconfig``)."""
    cfg = str(kubeconfig or current_kubeconfig or os.environ.get("KUBECONFIG", ""))
    return [KUBECTL, *(["--kubeconfig", cfg] if cfg else []), *args]


def kubectl(
    *args: str,
    kubeconfig: str | os.PathLike[str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the built kubectl against the test cluster (or ``kubeconfig``); raise with stderr on failure."""
    proc = subprocess.run(
        kubectl_argv(*args, kubeconfig=kubeconfig),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def kubectl_json(*args: str, **kw: Any) -> Any:
    return json.loads(kubectl(*args, "-o", "json", **kw).stdout)


def apply(
    manifest: str | dict[str, Any] | Sequence[dict[str, Any]], namespace: str | None = None, **kw: Any
) -> str:
    """``kubectl apply -f -`` a YAML string, an object or a list of objects."""
    if isinstance(manifest, dict):
        manifest = yaml.safe_dump(manifest)
    elif not isinstance(manifest, str):
        manifest = yaml.safe_dump_all(list(manifest))
    ns = ["-n", namespace] if namespace else []
    return kubectl("apply", *ns, "-f", "-", input=manifest, **kw).stdout


def get(kind: str, name: str, namespace: str | None = None, **kw: Any) -> dict[str, Any] | None:
    """The object as a dict, or None when it does not exist."""
    ns = ["-n", namespace] if namespace else []
    proc = kubectl("get", kind, name, *ns, "-o", "json", check=False, **kw)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr or "not found" in proc.stderr:
            return None
        raise KubectlError(proc.stderr.strip())
    return json.loads(proc.stdout)


def condition(obj: dict[str, Any] | None, type_: str) -> str | None:
    """status.conditions[type].status ('True'/'False'/...) or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status")
    return None


def wait_for(
    get_fn: Callable[[], Any],
    predicate: Callable[[Any], bool] = bool,
    timeout: float = 60,
    describe: str = "condition",
    interval: float = 0.5,
) -> Any:
    """Poll ``get_fn()`` until ``predicate(value)`` holds; return the value.

    On timeout, fail the test with ``describe`` and what the object last looked like (or the last error).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last = get_fn()
            last_error = None
            if predicate(last):
                return last
        except Exception as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if last_error is not None:
        seen = f"the last attempt raised {type(last_error).__name__}: {last_error}"
    else:
        seen = _looked_like(last)
    pytest.fail(f"timed out after {timeout:g}s waiting for {describe}; {seen}", pytrace=False)


def _looked_like(last: Any) -> str:
    body = yaml.safe_dump(last, sort_keys=False) if isinstance(last, dict | list) else repr(last)
    return "it last looked like:\n" + _indent(_strip_noise(body))


def watch_for(
    kind: str,
    name: str,
    namespace: str,
    predicate: Callable[[Any], bool],
    timeout: float = 60,
    describe: str = "condition",
) -> Any:
    """:func:`wait_for` on one object, from a watch (``kubectl get -w``): every version the API server
    records is seen, however briefly it stood (a state polling can step over)."""
    cmd = kubectl_argv("get", kind, "-n", namespace, "--field-selector", f"metadata.name={name}", "--watch")
    cmd += ["-o", "json"]
    decoder, buffer, last = json.JSONDecoder(), "", None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(proc.stdout.fileno(), 65536).decode()  # type: ignore[union-attr]
                if not chunk:
                    break
                buffer += chunk
                while buffer.strip():
                    try:
                        last, end = decoder.raw_decode(buffer.lstrip())
                    except ValueError:
                        break  # an object not whole yet
                    buffer = buffer.lstrip()[end:]
                    if predicate(last):
                        return last
        finally:
            proc.kill()
    pytest.fail(f"timed out after {timeout:g}s watching for {describe}; {_looked_like(last)}", pytrace=False)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _strip_noise(body: str) -> str:
    # managedFields make failure output unreadable
    return re.sub(r"  managedFields:\n(    .*\n|  - .*\n)*", "", body)


# ------------------------------------------------------------------------------------------- clusters


@dataclass
class Cluster:
    kubeconfig: str
    kind: str  # "existing" | "k3s" | "local"
    started_here: bool = False
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


def _answers(kubeconfig: str, timeout: float = 5) -> bool:
    try:
        proc = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                kubeconfig,
                "get",
                "--raw=/readyz",
                f"--request-timeout={int(timeout)}s",
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def docker_answers(timeout: float = 1.0) -> bool:
    """True when a Docker engine answers ``GET /_ping`` (unix socket or tcp DOCKER_HOST); never hangs."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            path = host[len("unix://") :]
            if not os.path.exists(path):
                return False
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        elif host.startswith("tcp://"):
            h, _, p = host[len("tcp://") :].partition(":")
            sock = socket.create_connection((h, int(p or 2375)), timeout=timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


def _existing_kubeconfig() -> str | None:
    for var in ("TROUPE_E2E_KUBECONFIG", "KUBECONFIG"):
        value = os.environ.get(var)
        if not value:
            continue
        path = value.split(os.pathsep)[0]
        if Path(path).resolve() == LOCAL_KUBECONFIG.resolve():
            return None  # our own local cluster: handled (and started if needed) below
        if not Path(path).is_file():
            raise pytest.UsageError(f"{var}={value} is not a file")
        if not _answers(path):
            raise pytest.UsageError(f"{var}={value}: the cluster does not answer /readyz")
        return path
    return None


def _k3s_cluster() -> Cluster:
    from testcontainers.k3s import K3sContainer

    container = K3sContainer()
    container.start()
    fd, path = tempfile.mkstemp(prefix="troupe-k3s-", suffix=".kubeconfig")
    with os.fdopen(fd, "w") as f:
        f.write(container.config_yaml())

    def stop() -> None:
        container.stop()
        os.unlink(path)

    return Cluster(path, "k3s", True, stop)


def _local_cluster() -> Cluster:
    script = str(CLUSTER_DIR / "cluster.sh")
    if subprocess.run(["bash", script, "status"], capture_output=True).returncode == 0:
        return Cluster(str(LOCAL_KUBECONFIG), "local", False)
    subprocess.run(["bash", str(CLUSTER_DIR / "build.sh")], check=True)  # prints progress; no-op when built
    subprocess.run(["bash", script, "up"], check=True, stdout=subprocess.DEVNULL)

    def stop() -> None:
        subprocess.run(["bash", script, "down"], check=False)

    return Cluster(str(LOCAL_KUBECONFIG), "local", True, stop)


def start_cluster() -> Cluster:
    existing = _existing_kubeconfig()
    if existing:
        return Cluster(existing, "existing", False)
    if os.environ.get("TROUPE_E2E_NO_DOCKER") != "1" and docker_answers():
        return _k3s_cluster()
    return _local_cluster()


# ------------------------------------------------------------------------------------------- outages

#: the cluster the ``cluster`` fixture chose: outages need to know whether it is the local one to break.
current_cluster: Cluster | None = None


@dataclass
class Outage:
    """A local control-plane component stopped and started again by its supervisor (``time.time()``s)."""

    component: str
    stopped_at: float  # its process had exited
    started_at: float  # its supervisor started it again
    restarts: int  # the supervisor's restart count for it, afterwards
    answering_at: float | None = None  # kube-apiserver only: /readyz answered again

    @property
    def down_for(self) -> float:
        return self.started_at - self.stopped_at

    @property
    def answering_after(self) -> float | None:
        """Seconds from the API server's start to its first answer."""
        return None if self.answering_at is None else self.answering_at - self.started_at


def _cluster_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CLUSTER_DIR / "cluster.sh"), *args], capture_output=True, text=True, timeout=60
    )


def component_states() -> dict[str, dict[str, Any]]:
    """The local cluster's supervised components by name (``cluster.sh status --json``): state (running,
    backoff, held, stopped), pid, restarts, last_exit, started_at; empty when no local cluster runs."""
    proc = _cluster_sh("status", "--json")
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else {}


def require_local_cluster() -> None:
    """Skip the test unless this session's cluster is the local control plane, whose components the harness
    can stop (an existing cluster from KUBECONFIG or a K3s container it cannot)."""
    c = current_cluster
    if c is None or c.kind != "local":
        where = "no cluster yet" if c is None else f"the {c.kind} cluster {c.kubeconfig}"
        pytest.skip(
            "stopping control-plane components needs the local cluster of this checkout "
            f"(tools/cluster/cluster.sh, see docs/cluster.md); this session uses {where}"
        )
    if os.environ.get("TROUPE_E2E_NO_OUTAGES") == "1":
        pytest.skip("TROUPE_E2E_NO_OUTAGES=1: no control-plane outages (a cluster shared with others)")
    if not component_states():
        pytest.skip("the local cluster runs without supervisors (started by an older cluster.sh): restart it")


def _running(name: str, timeout: float) -> dict[str, Any]:
    states = component_states()
    if name not in states:
        raise ValueError(f"no supervised component {name!r}; there are {sorted(states)}")
    state: dict[str, Any] = wait_for(
        lambda: component_states().get(name),
        lambda s: s is not None and s.get("state") == "running",
        timeout=timeout,
        describe=f"{name} to be running under its supervisor",
        interval=0.2,
    )
    return state


def _started_again(name: str, before: dict[str, Any], timeout: float) -> dict[str, Any]:
    state: dict[str, Any] = wait_for(
        lambda: component_states().get(name),
        lambda s: s is not None and s["restarts"] > before["restarts"] and s["state"] == "running",
        timeout=timeout,
        describe=f"the supervisor to start {name} again (it had {before['restarts']} restarts)",
        interval=0.25,
    )
    return state


def kill_component(name: str, signal_name: str = "KILL", timeout: float = 60) -> Outage:
    """Crash one local control-plane component (etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler, kwok-controller; SIGKILL unless told) and return once its supervisor has started it
    again. Skips the test where the harness cannot do that (see :func:`require_local_cluster`)."""
    require_local_cluster()
    before = _running(name, timeout)
    proc = _cluster_sh("kill", name, signal_name)
    if proc.returncode != 0:
        raise RuntimeError(f"cluster.sh kill {name} failed: {proc.stderr.strip()}")
    after = _started_again(name, before, timeout)
    return Outage(name, after["exited_at"], after["started_at"], after["restarts"])


def restart_apiserver(down_for: float = 10.0, timeout: float = 120) -> Outage:
    """Kill the local kube-apiserver, keep it down ``down_for`` seconds, and return once its supervisor has
    started it again and ``/readyz`` answers. Skips like :func:`kill_component`.

    The controller-manager and the scheduler run without leader election (tools/cluster/cluster.sh): they
    keep running through the outage and resume their watches once it answers. Wait for what a test needs
    (a Deployment Available, ...) with a timeout that allows for their relisting, about 60 s."""
    require_local_cluster()
    assert current_cluster is not None
    kubeconfig = current_cluster.kubeconfig
    before = _running("kube-apiserver", timeout)
    proc = _cluster_sh("outage", "kube-apiserver", f"{down_for:g}")
    if proc.returncode != 0:
        raise RuntimeError(f"cluster.sh outage kube-apiserver failed: {proc.stderr.strip()}")
    after = _started_again("kube-apiserver", before, down_for + timeout)
    wait_for(
        lambda: _answers(kubeconfig, timeout=2),
        timeout=timeout,
        describe="kube-apiserver to answer /readyz after its restart",
        interval=0.1,
    )
    return Outage("kube-apiserver", after["exited_at"], after["started_at"], after["restarts"], time.time())


# ------------------------------------------------------------------------------------------- namespaces, SAs


def new_namespace_name(hint: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-") or "t"
    return f"{base}-{secrets.token_hex(3)}"


def create_namespace(name: str) -> str:
    kubectl("create", "namespace", name)
    # the ServiceAccount controller creates "default"; tests creating pods need it
    wait_for(
        lambda: get("serviceaccount", "default", name), describe=f"namespace {name}'s default ServiceAccount"
    )
    return name


def delete_namespace(name: str, wait: bool = False) -> None:
    kubectl(
        "delete",
        "namespace",
        name,
        "--ignore-not-found",
        f"--wait={'true' if wait else 'false'}",
        check=False,
    )


def ensure_service_account(namespace: str, name: str) -> None:
    if get("serviceaccount", name, namespace) is None:
        kubectl("create", "serviceaccount", name, "-n", namespace)


def service_account_kubeconfig(
    namespace: str, service_account: str, path: str | os.PathLike[str], duration: str = "6h"
) -> str:
    """Write a kubeconfig that authenticates as ``system:serviceaccount:<namespace>:<service_account>``.

    The token comes from the TokenRequest API (``kubectl create token``); the ServiceAccount is created
    when missing. Server and CA are copied from the admin kubeconfig.
    """
    ensure_service_account(namespace, service_account)
    token = kubectl(
        "create", "token", service_account, "-n", namespace, f"--duration={duration}"
    ).stdout.strip()
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    cluster = admin["clusters"][0]["cluster"]
    user = f"system:serviceaccount:{namespace}:{service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": user, "namespace": namespace}}],
        "current-context": "test",
    }
    Path(path).write_text(yaml.safe_dump(config))
    os.chmod(path, 0o600)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------- operators


@dataclass
class Operator:
    """An operator subprocess (``uv run troupe run ...``) running as a ServiceAccount."""

    plugin: str
    namespace: str | None
    service_account: str
    metrics_port: int
    log_path: Path
    kubeconfig: str
    process: subprocess.Popen[bytes]
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def kill_and_restart(self) -> None:
        """SIGKILL the operator (no chance to clean up) and start it again, same command and credentials."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 10) -> int | None:
        if self.process.poll() is None:
            # to `uv run` only: it forwards the signal, and kopf's second SIGTERM was a traceback
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


#: the API server's refusal as the operator's log shows it (reason "Forbidden", status 403). A number alone is
#: not one: ":47403" is a port, ",403" the milliseconds of a log line's time.
REFUSAL = re.compile(r"(?<![:,.\d])\b403\b|Forbidden")


def refusals(log: str) -> list[str]:
    """The lines of an operator's log that say the API server refused it."""
    return [line for line in log.splitlines() if REFUSAL.search(line)]


def start_operator(
    plugin: str,
    namespace: str | None,
    service_account: str,
    log_dir: Path,
    sa_namespace: str | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    standalone: bool = True,
) -> Operator:
    """Start ``uv run troupe run <plugin> (--namespace <ns> | --all-namespaces) --standalone`` as a SA.

    ``sa_namespace`` is where the ServiceAccount lives (default: ``namespace``). ``standalone=False``
    runs with leader election (the chart's peering object must exist), as the chart's replicas do.
    """
    sa_ns = sa_namespace or namespace
    if sa_ns is None:
        raise ValueError("sa_namespace is required with namespace=None (all namespaces)")
    log_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = service_account_kubeconfig(
        sa_ns, service_account, log_dir / f"{plugin}-{service_account}.kubeconfig"
    )
    port = free_port()
    scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    uv = os.environ.get("UV", "uv")
    cmd = [
        uv,
        "run",
        "--frozen",
        "troupe",
        "run",
        plugin,
        *scope,
        *(["--standalone"] if standalone else []),
        "--metrics-port",
        str(port),
    ]
    cmd += list(extra_args)
    log_path = log_dir / f"{plugin}.log"
    full_env = {**os.environ, "KUBECONFIG": kubeconfig, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Operator(plugin, namespace, service_account, port, log_path, kubeconfig, process, cmd, full_env)


# ------------------------------------------------------------------------------------------- helm


def build_chart_dependencies(chart: str | os.PathLike[str]) -> None:
    """Vendor a chart directory's dependencies (the troupe-common library chart) into its charts/.

    ``helm install <dir>`` and ``helm template <dir>`` need them there, and they are not committed
    (.gitignore): they come from ``file://../troupe-common``, pinned by the committed Chart.lock, in well
    under a second and without a network. A packaged chart (.tgz) already holds them.
    """
    path = Path(chart)
    if path.is_dir() and yaml.safe_load((path / "Chart.yaml").read_text()).get("dependencies"):
        proc = subprocess.run(
            [HELM, "dependency", "build", "--skip-refresh", str(path)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"helm dependency build {path} failed:\n{proc.stdout}{proc.stderr}")


class Helm:
    """Install charts with pyhelm3 (``from pyhelm3 import Client``) driving the helm built here."""

    def __init__(self, kubeconfig: str, executable: str = HELM) -> None:
        from pyhelm3 import Client

        self.client = Client(executable=executable, kubeconfig=Path(kubeconfig))
        self.installed: list[tuple[str, str]] = []

    async def ainstall(
        self,
        chart: str | os.PathLike[str],
        namespace: str,
        release: str | None = None,
        values: dict[str, Any] | None = None,
        wait: bool = True,
        timeout: str = "2m",  # noqa: ASYNC109 -- helm's --timeout, not an asyncio deadline
    ) -> Any:
        chart_path = Path(chart)
        if not chart_path.is_absolute() and not chart_path.exists():
            chart_path = ROOT / "charts" / str(chart)
        build_chart_dependencies(chart_path)
        loaded = await self.client.get_chart(chart_path.resolve())
        name = release or chart_path.name
        self.installed.append((name, namespace))  # before: a failed install leaves a release to remove too
        return await self.client.install_or_upgrade_release(
            name, loaded, values or {}, namespace=namespace, create_namespace=True, wait=wait, timeout=timeout
        )

    async def auninstall_all(self) -> None:
        for name, namespace in reversed(self.installed):
            with contextlib.suppress(Exception):
                await self.client.uninstall_release(name, namespace=namespace, wait=False)
        self.installed.clear()

    def install(self, chart: str | os.PathLike[str], namespace: str, **kw: Any) -> Any:
        """Sync ``ainstall`` (for sync tests; from async tests await ``ainstall``)."""
        return asyncio.run(self.ainstall(chart, namespace, **kw))

    def uninstall_all(self) -> None:
        asyncio.run(self.auninstall_all())


# ------------------------------------------------------------------------------- an installed operator


@contextlib.contextmanager
def installed_operator(
    plugin: str,
    cluster: str,
    log_dir: Path,
    *,
    release: str,
    env: Callable[[str], dict[str, str]] | None = None,
) -> Iterator[Operator]:
    """The operator's chart installed in a namespace of its own, and the operator running over all
    namespaces as the chart's ServiceAccount (so its RBAC is what is tested). ``env(system_namespace)``
    gives extra environment, e.g. what the chart's Deployment would pass. At the end the operator must
    still be alive and its log free of tracebacks and refusals (403); then everything is removed.
    """
    chart = ROOT / "charts" / f"{plugin}-operator"
    system = create_namespace(new_namespace_name(f"{plugin}-system"))
    # helm installs crds/ only when absent; a cluster kept between runs gets the current ones this way
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(chart / "crds"))
    kubectl(
        "wait", "--for=condition=Established", "crd", "-l", f"troupe.dev/operator={plugin}", "--timeout=30s"
    )
    helm = Helm(cluster)
    try:  # a failed install leaves no namespace or release behind either
        asyncio.run(helm.ainstall(chart, system, release=release))
        service_account = f"{release}-{chart.name}"
        op = start_operator(
            plugin, None, service_account, log_dir, sa_namespace=system, env=env(system) if env else None
        )
        try:
            yield op
            assert op.alive, f"the operator died:\n{op.tail()}"
            assert "Traceback" not in op.log(), op.tail(80)
            # a rule missing from the chart's generated RBAC
            assert not refusals(op.log()), op.tail(80)
        finally:
            op.stop()
            print(f"\n[{plugin} operator log tail]\n{op.tail(40)}")
    finally:
        helm.uninstall_all()
        delete_namespace(system)


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def cluster() -> Iterator[str]:
    """A kubeconfig path for a cluster that answers (see module docstring for the order of choice)."""
    global current_kubeconfig, current_cluster
    c = start_cluster()
    current_kubeconfig = c.kubeconfig
    current_cluster = c
    print(f"\n[troupe e2e] cluster: {c.kind} ({c.kubeconfig})", file=sys.stderr)
    try:
        yield c.kubeconfig
    finally:
        c.stop()


@pytest.fixture
def namespace(cluster: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = create_namespace(new_namespace_name(request.node.name))
    yield name
    if os.environ.get("TROUPE_E2E_KEEP_NAMESPACES") != "1":
        delete_namespace(name)


@pytest.fixture
def helm(cluster: str) -> Iterator[Helm]:
    """``helm.install("workshop-operator", namespace)`` -- charts/<name> dirs or any chart path."""
    h = Helm(cluster)
    yield h
    h.uninstall_all()


@pytest.fixture
def run_operator(
    cluster: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Operator]]:
    """``run_operator(plugin, namespace, service_account, extra_args=())`` -> a running :class:`Operator`.

    Runs ``uv run troupe run <plugin> --namespace <ns> --standalone --metrics-port <free port>`` with a
    kubeconfig holding a TokenRequest token of ``service_account`` (so RBAC applies). Pass
    ``namespace=None, sa_namespace=...`` for ``--all-namespaces``. Logs go to a file; the tail is added to
    the report of a failing test. Stopped (SIGTERM, then SIGKILL) at teardown.
    """
    started: list[Operator] = []
    log_dir = tmp_path_factory.mktemp("operators")

    def run(
        plugin: str,
        namespace: str | None,
        service_account: str,
        extra_args: Sequence[str] = (),
        sa_namespace: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Operator:
        op = start_operator(plugin, namespace, service_account, log_dir, sa_namespace, extra_args, env)
        started.append(op)
        return op

    request.node._troupe_operators = started  # type: ignore[attr-defined]
    yield run
    for op in started:
        op.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("call", "setup"):
        for op in getattr(item, "_troupe_operators", []):
            state = "running" if op.alive else f"exited {op.process.returncode}"
            report.sections.append((f"operator {op.plugin} log tail ({state}, {op.log_path})", op.tail()))
