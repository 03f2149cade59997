"""Run an operator outside the cluster exactly as its installed chart would run it.

    python tools/chart_run.py --release tilt-workshop --namespace troupe-tilt --operator workshop \\
        [--metrics-port 18080] [--image localhost/troupe/workshop-operator:dev]

Reads the chart's Deployment from the cluster (install it with `replicaCount=0`), and starts the operator
with that Deployment's arguments and environment (values, Secret and ConfigMap keys, the pod's name and
namespace resolved here) and as its ServiceAccount (a TokenRequest token): from the workspace
(`uv run troupe run <operator>`, Tilt's local mode) or from an image (`buildah run`, the image smoke
test), where the token, CA and namespace are mounted where a pod has them, so the image's in-cluster
login is what is used. KUBECONFIG must be an administrator's (it reads Secrets and creates tokens).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
SA_DIR = "/run/secrets/kubernetes.io/serviceaccount"  # /var/run is a symlink to /run in Debian images


def kubectl_path() -> str:
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    out = subprocess.run(
        ["bash", str(ROOT / "tools/cluster/build.sh"), "--env"], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)["KUBECTL"]


def kubectl(*args: str) -> str:
    return subprocess.run([kubectl_path(), *args], capture_output=True, text=True, check=True).stdout


@dataclass
class ChartPod:
    """What the chart's Deployment gives its operator container."""

    namespace: str
    service_account: str
    args: list[str]
    env: dict[str, str]

    def with_metrics_port(self, port: int) -> list[str]:
        """The chart's arguments with its metrics port replaced (the host's 8080 may be taken)."""
        kept = [a for a in self.args if not a.startswith("--metrics-port")]
        return [*kept, f"--metrics-port={port}"]


def chart_pod(release: str, namespace: str, pod_name: str) -> ChartPod:
    items = json.loads(
        kubectl(
            "get", "deployment", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}", "-o", "json"
        )
    )["items"]
    if not items:
        raise SystemExit(f"no Deployment of release {release} in {namespace}: is the chart installed?")
    spec = items[0]["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "operator")
    env = {}
    for var in container.get("env", []):
        env[var["name"]] = env_value(var, namespace, pod_name)
    return ChartPod(namespace, spec["serviceAccountName"], list(container.get("args", [])), env)


def env_value(var: dict[str, Any], namespace: str, pod_name: str) -> str:
    if "valueFrom" not in var:  # the API server stores an empty value as no value at all
        return str(var.get("value", ""))
    source = var["valueFrom"]
    if "fieldRef" in source:
        field = source["fieldRef"]["fieldPath"]
        return {"metadata.name": pod_name, "metadata.namespace": namespace}.get(field, "")
    for ref, kind in (("secretKeyRef", "secret"), ("configMapKeyRef", "configmap")):
        if ref in source:
            obj = json.loads(kubectl("get", kind, source[ref]["name"], "-n", namespace, "-o", "json"))
            value = obj.get("data", {}).get(source[ref]["key"], "")
            return base64.b64decode(value).decode() if kind == "secret" else str(value)
    raise SystemExit(f"env {var['name']}: a source this tool does not resolve: {source}")


def token(pod: ChartPod, duration: str = "24h") -> str:
    return kubectl(
        "create", "token", pod.service_account, "-n", pod.namespace, f"--duration={duration}"
    ).strip()


def admin_cluster() -> dict[str, Any]:
    cluster: dict[str, Any] = json.loads(
        kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json")
    )["clusters"][0]["cluster"]
    return cluster


def write_kubeconfig(pod: ChartPod, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (for a process on this host)."""
    user = f"system:serviceaccount:{pod.namespace}:{pod.service_account}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": admin_cluster()}],
        "users": [{"name": user, "user": {"token": token(pod)}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": user, "namespace": pod.namespace}}],
        "current-context": "c",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def write_service_account_dir(pod: ChartPod, directory: Path) -> dict[str, str]:
    """The files a pod finds in /run/secrets/kubernetes.io/serviceaccount, readable by the image's user;
    returns the environment that points the in-cluster login at this API server."""
    cluster = admin_cluster()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    files = {
        "token": token(pod),
        "namespace": pod.namespace,
        "ca.crt": base64.b64decode(cluster["certificate-authority-data"]).decode(),
    }
    for name, text in files.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o644)
    server = urlsplit(cluster["server"])
    return {
        "KUBERNETES_SERVICE_HOST": server.hostname or "",
        "KUBERNETES_SERVICE_PORT": str(server.port or 443),
    }


def image_command(
    container: str, operator: str, pod: ChartPod, sa_dir: Path, tmp: Path, port: int
) -> list[str]:
    """`buildah run` of a working container of the image: the chart's arguments and environment, the
    ServiceAccount files where a pod has them, a writable /tmp (the chart's emptyDir), host network."""
    env = {**pod.env, **write_service_account_dir(pod, sa_dir)}
    cmd = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
    cmd += ["-v", f"{sa_dir}:{SA_DIR}:ro", "-v", f"{tmp}:/tmp"]
    for name, value in sorted(env.items()):
        cmd += ["--env", f"{name}={value}"]
    return [*cmd, container, "--", "troupe", "run", operator, *pod.with_metrics_port(port)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--operator", required=True)
    ap.add_argument("--metrics-port", type=int, default=0)
    ap.add_argument("--image", help="run from this image (buildah) instead of the workspace")
    args = ap.parse_args(argv)
    port = args.metrics_port or free_port()
    pod = chart_pod(args.release, args.namespace, f"{socket.gethostname()}-{args.operator}")
    env = {**os.environ, **pod.env, "PYTHONUNBUFFERED": "1"}
    state = ROOT / ".troupe" / "run"
    if not args.image:
        env["KUBECONFIG"] = str(write_kubeconfig(pod, state / f"{args.release}.kubeconfig"))
        uv = os.environ.get("UV", "uv")
        cmd = [uv, "run", "--frozen", "troupe", "run", args.operator, *pod.with_metrics_port(port)]
        print(
            f"[chart_run] {args.operator} as {pod.namespace}/{pod.service_account}: {' '.join(cmd)}",
            flush=True,
        )
        os.execvpe(cmd[0], cmd, env)
    container = subprocess.run(["buildah", "from", args.image], capture_output=True, text=True, check=True)
    name = container.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="chart-run-") as work:
        tmp = Path(work) / "tmp"
        tmp.mkdir(mode=0o1777)
        tmp.chmod(0o1777)
        cmd = image_command(name, args.operator, pod, Path(work) / "sa", tmp, port)
        child = subprocess.Popen(cmd)
        # Tilt and Ctrl-C stop this process: stop the operator with it (buildah passes the signal on).
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
        try:
            return child.wait()
        finally:
            subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
