#!/usr/bin/env python3
"""Keep a local control-plane component running, as a kubelet keeps a static pod's container running.

kwokctl (``--runtime binary``) starts each component from the binary path it is given and forgets it: a
component that crashes (or is killed by a reliability test) exits, and nothing starts it
again. cluster.sh therefore hands kwokctl a one-line wrapper per component that runs ``supervise.py run``:
kwokctl's pid file names the supervisor, and the real binary is the supervisor's child. When the child exits
the supervisor starts it again after a CrashLoopBackOff-like delay (1 s, doubling, capped at 10 s; reset
after a run of twice the cap, as the kubelet does), and logs each restart to ``<workdir>/logs/supervise.log``
and to the component's own log.

Stopping: SIGTERM/SIGINT/SIGHUP stop the child (SIGTERM, SIGKILL 3 s later) and end the
supervisor without a restart; so does the file ``<workdir>/supervise/STOP`` (``cluster.sh down`` writes it
first), so nothing is resurrected while the cluster goes down. The child is started with PR_SET_PDEATHSIG,
so it is killed with its supervisor even when that is SIGKILLed (kwokctl stops components with SIGKILL).

  supervise.py run --name NAME --workdir DIR -- BINARY ARGS...   supervise (the wrappers run this)
  supervise.py status --workdir DIR [--json]                      each component: state, pid, restarts
  supervise.py kill --workdir DIR NAME [--signal KILL]            signal the component itself (a crash)
  supervise.py outage --workdir DIR NAME SECONDS                  kill it, keep it down SECONDS, start it
  supervise.py down --workdir DIR --guard TEXT                    stop all for good (cluster.sh down)
  supervise.py ready --workdir DIR --expect A,B,...               exit 0 when every named component is ready

State lives in ``<workdir>/supervise/``: ``NAME.json`` (written atomically at each transition),
``NAME.hold`` (an outage in progress: seconds to stay down), ``STOP``. Plain python3, standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BACKOFF_START = 1.0
BACKOFF_CAP = 10.0
BACKOFF_RESET_AFTER = 2 * BACKOFF_CAP  # the kubelet forgets the backoff after a run of twice the cap
# Seconds between SIGTERM and SIGKILL when stopping. etcd, the controllers and kwok end within a second; the
# API server stops listening at once but then waits out in-flight requests for its 60 s request timeout,
# which nobody needs when the cluster goes away (kwokctl itself stops everything with SIGKILL).
STOP_GRACE = 3
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the supervisor dies (even by SIGKILL), the kernel kills
    # the component instead of leaving it orphaned. SIGKILL: nobody is left to escalate a SIGTERM.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def state_dir(workdir: Path) -> Path:
    return workdir / "supervise"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Supervisor:
    def __init__(self, name: str, workdir: Path, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.dir = state_dir(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "logs" / "supervise.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path = self.dir / f"{name}.json"
        self.hold_path = self.dir / f"{name}.hold"
        self.stop_path = self.dir / "STOP"
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.stop_signal = "the STOP file"
        self.restarts = 0
        self.state: dict[str, Any] = {}
        # A signal writes a byte here, so a backoff sleep (select on the pipe) ends at once.
        self._wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGALRM, self._on_grace_over)

    # --------------------------------------------------------------------------------- signals

    # The handlers only set flags and signal the child: writing a log line here could interrupt the same
    # write in the main loop (buffered I/O refuses reentrant calls).
    def _on_stop(self, signum: int, _frame: object) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stop_signal = signal.Signals(signum).name
        self._signal_child(signal.SIGTERM)
        signal.alarm(STOP_GRACE)

    def _on_grace_over(self, _signum: int, _frame: object) -> None:
        self._signal_child(signal.SIGKILL)  # still running STOP_GRACE s after SIGTERM

    def _signal_child(self, sig: int) -> None:
        # returncode is set once the child is reaped; before that its pid cannot have been reused.
        if self.child is not None and self.child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child.pid, sig)

    # --------------------------------------------------------------------------------- helpers

    def log(self, message: str) -> None:
        line = f"{_now()} {self.name}: {message}"
        with contextlib.suppress(OSError), open(self.log_path, "a") as f:
            f.write(line + "\n")
        # stderr is the component's own log file (kwokctl opened it), so the restart shows up in context
        print(f"[supervise] {line}", file=sys.stderr, flush=True)

    def save(self, **changes: Any) -> None:
        self.state.update(changes, name=self.name, supervisor=os.getpid(), restarts=self.restarts)
        _write_json(self.state_path, self.state)

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and not self.stop_path.exists():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self._wake_r], [], [], min(left, 1.0))
            if ready:
                os.read(self._wake_r, 512)

    def held_for(self) -> float | None:
        """Seconds an outage asked the component to stay down (``outage`` writes the hold file), or None."""
        try:
            text = self.hold_path.read_text()
        except FileNotFoundError:
            return None
        self.hold_path.unlink(missing_ok=True)
        try:
            return max(0.0, float(text))
        except ValueError:
            return None

    # --------------------------------------------------------------------------------- the loop

    def run(self) -> int:
        backoff = BACKOFF_START
        starts = 0
        while True:
            if self.stop_path.exists():
                self.stopping = True
            if self.stopping:
                break
            self.restarts, starts = starts, starts + 1
            started = time.monotonic()
            try:
                self.child = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)
            except OSError as exc:  # e.g. the binary vanished: back off like any other failure
                self.child = None
                self.log(f"cannot start {self.argv[0]}: {exc}")
                code = 127
            else:
                if self.stopping:  # the stop signal came before self.child named this process
                    self._signal_child(signal.SIGTERM)
                self.save(state="running", pid=self.child.pid, started_at=time.time(), next_start_at=None)
                if self.restarts:
                    self.log(f"started again (restart {self.restarts}, pid {self.child.pid})")
                code = self.child.wait()
            ran = time.monotonic() - started
            if self.stopping or self.stop_path.exists():
                self.log(f"exited with {code}, stopped by {self.stop_signal}: no restart")
                self.save(last_exit=code, exited_at=time.time())
                break
            if ran >= BACKOFF_RESET_AFTER:
                backoff = BACKOFF_START
            hold = self.held_for()
            delay = hold if hold is not None else backoff
            why = f"outage: held down {delay:g}s" if hold is not None else f"back-off {delay:g}s"
            self.log(f"exited with {code} after {ran:.1f}s; {why}")
            self.save(
                state="held" if hold is not None else "backoff",
                pid=None,
                last_exit=code,
                exited_at=time.time(),
                next_start_at=time.time() + delay,
            )
            self.sleep(delay)
            if hold is None:
                backoff = min(backoff * 2, BACKOFF_CAP)
        signal.alarm(0)
        self.save(state="stopped", pid=None, next_start_at=None)
        return 0


# ------------------------------------------------------------------------------------------- clients


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, parent pid, process group) of a process, or None when it is gone."""
    try:
        # fields 3-5 of /proc/PID/stat; split after the command name, which may contain spaces and ')'
        state, ppid, pgrp = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3]
    except (OSError, ValueError):
        return None
    return state, int(ppid), int(pgrp)


def read_states(workdir: Path) -> dict[str, dict[str, Any]]:
    """Every supervised component's last recorded state, with ``supervisor_alive`` checked now."""
    states: dict[str, dict[str, Any]] = {}
    for path in sorted(state_dir(workdir).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            state["supervisor_alive"] = _alive(state.get("supervisor"))
            states[state["name"]] = state
    return states


def _running_child(workdir: Path, name: str) -> dict[str, Any]:
    state = read_states(workdir).get(name)
    if state is None:
        sys.exit(f"{name}: not supervised here (known: {', '.join(read_states(workdir)) or 'none'})")
    pid = state.get("pid")
    # the pid must still be this supervisor's child: a stale state file must not make us signal a stranger
    stat = _proc_stat(pid) if pid else None
    if state.get("state") != "running" or stat is None or stat[1] != state["supervisor"]:
        sys.exit(f"{name}: not running now (state {state.get('state')})")
    return state


def cmd_status(workdir: Path, as_json: bool) -> int:
    states = read_states(workdir)
    if as_json:
        print(json.dumps(states, indent=2))
        return 0
    print(f"{'COMPONENT':<24} {'STATE':<9} {'PID':>7} {'RESTARTS':>8} {'LAST EXIT':>9}  UP")
    now = time.time()
    for name, s in states.items():
        state = s.get("state", "?") if s["supervisor_alive"] else "gone"
        up = f"{now - s['started_at']:.0f}s" if state == "running" and s.get("started_at") else "-"
        last = s.get("last_exit")
        pid = s.get("pid") if state == "running" else None
        print(
            f"{name:<24} {state:<9} {pid or '-':>7} {s.get('restarts', 0):>8} "
            f"{'-' if last is None else last:>9}  {up}"
        )
    return 0


def cmd_kill(workdir: Path, name: str, sig: signal.Signals) -> int:
    state = _running_child(workdir, name)
    os.kill(state["pid"], sig)
    print(f"{name}: sent {sig.name} to pid {state['pid']} (after {state.get('restarts', 0)} restarts)")
    return 0


def cmd_outage(workdir: Path, name: str, seconds: float) -> int:
    """Kill the component (SIGKILL: a crash, and immediate; after SIGTERM the API server lingers for a
    minute) and return once its supervisor saw it exit; the supervisor starts it ``seconds`` later."""
    state = _running_child(workdir, name)
    hold = state_dir(workdir) / f"{name}.hold"
    hold.write_text(str(seconds))
    os.kill(state["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if read_states(workdir).get(name, {}).get("pid") != state["pid"]:
            print(f"{name}: pid {state['pid']} killed; held down {seconds:g}s, then started again")
            return 0
        time.sleep(0.05)
    hold.unlink(missing_ok=True)
    sys.exit(f"{name}: its supervisor did not see pid {state['pid']} exit within 10s of SIGKILL")


def _group_alive(pgid: int) -> bool:
    """Any process of this group still running (zombies do not count: they wait for a reaper, not for us)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[2] == pgid and stat[0] != "Z":
                return True
    return False


def cmd_down(workdir: Path, guard: str, timeout: float) -> int:
    """Stop every component for good: no supervisor starts one again, and each process group ends empty.

    kwokctl's pid files name the processes it started (our supervisors; the bare components of a cluster
    started before supervision existed). kwokctl starts each with setsid, so its process group holds the
    supervisor and its component. A pid is only signalled when its command line names ``guard`` (the
    cluster's folder): a pid file outliving its process must not make us signal a stranger.
    """
    state_dir(workdir).mkdir(parents=True, exist_ok=True)
    (state_dir(workdir) / "STOP").touch()
    groups: list[int] = []
    for pid_file in sorted((workdir / "pids").glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if guard in cmdline:
            groups.append(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = False
    while left := [g for g in groups if _group_alive(g)]:
        if time.monotonic() >= deadline:
            if killed:
                sys.exit(f"process groups {left} survive SIGKILL")
            print(f"alive {timeout:g}s after SIGTERM: SIGKILL to process groups {left}", file=sys.stderr)
            for g in left:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(g, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5
        time.sleep(0.1)
    return 0


# ------------------------------------------------------------------------------------------- readiness

# Each component's health endpoint, from the flags kwokctl gave it: (flag whose value holds the port, scheme,
# path). Unauthenticated: the API server lets anyone read /readyz, the controllers /healthz.
HEALTH = {
    "etcd": ("--listen-client-urls", "http", "/health"),
    "kube-apiserver": ("--secure-port", "https", "/readyz"),
    "kube-controller-manager": ("--secure-port", "https", "/healthz"),
    "kube-scheduler": ("--secure-port", "https", "/healthz"),
    "kwok-controller": ("--server-address", "http", "/healthz"),
}


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _port_of(args: list[str], flag: str) -> int | None:
    for arg in args:
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1].split(",")[0]  # etcd: the first of its client URLs
            with contextlib.suppress(ValueError):
                return int(value.rstrip("/").rsplit(":", 1)[-1])
    return None


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (IPv4 and IPv6), from /proc/net/tcp{,6}."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(fields[9])
    return inodes


def _holds_socket(pid: int, inodes: set[str]) -> bool:
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(fd.path)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
    return False


def _answers(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the cluster's own self-signed certs
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def component_problem(state: dict[str, Any] | None, name: str) -> str | None:
    """Why ``name`` is not ready, or None: it runs under a live supervisor, the port of its health endpoint
    is held by its own process (not by another cluster's component answering in its place, as after a port
    clash), and the endpoint answers 200."""
    if state is None:
        return "not started (no supervisor state)"
    if not state.get("supervisor_alive"):
        return "its supervisor is gone"
    pid = state.get("pid")
    stat = _proc_stat(pid) if pid else None
    if state.get("state") != "running" or stat is None or stat[1] != state["supervisor"]:
        restarts, last = state.get("restarts", 0), state.get("last_exit")
        return f"not running (state {state.get('state')}, {restarts} restarts, last exit {last})"
    flag, scheme, path = HEALTH[name]
    port = _port_of(_cmdline(pid), flag)
    if port is None:
        return f"no {flag} on its command line"
    if not _holds_socket(pid, _listening_inodes(port)):
        return f"pid {pid} does not listen on port {port}"
    if not _answers(f"{scheme}://127.0.0.1:{port}{path}"):
        return f"{scheme}://127.0.0.1:{port}{path} does not answer 200"
    return None


def cmd_ready(workdir: Path, expect: list[str], quiet: bool) -> int:
    states = read_states(workdir)
    problems = {name: component_problem(states.get(name), name) for name in expect}
    for name, problem in problems.items():
        if problem and not quiet:
            print(f"{name}: {problem}", file=sys.stderr)
    return 1 if any(problems.values()) else 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--name", required=True)
    run.add_argument("--workdir", required=True, type=Path)
    run.add_argument("command", nargs=argparse.REMAINDER)
    status = sub.add_parser("status")
    status.add_argument("--workdir", required=True, type=Path)
    status.add_argument("--json", action="store_true")
    kill = sub.add_parser("kill")
    kill.add_argument("--workdir", required=True, type=Path)
    kill.add_argument("name")
    kill.add_argument("--signal", default="KILL", help="KILL (a crash, the default), TERM, ...")
    outage = sub.add_parser("outage")
    outage.add_argument("--workdir", required=True, type=Path)
    outage.add_argument("name")
    outage.add_argument("seconds", type=float)
    down = sub.add_parser("down")
    down.add_argument("--workdir", required=True, type=Path)
    down.add_argument("--guard", required=True, help="a pid is signalled only when its command line has this")
    down.add_argument("--timeout", type=float, default=STOP_GRACE + 7)
    ready = sub.add_parser("ready")
    ready.add_argument("--workdir", required=True, type=Path)
    ready.add_argument("--expect", required=True, help="comma-separated component names")
    ready.add_argument("--quiet", action="store_true", help="only the exit status")
    args = p.parse_args(argv)

    if args.cmd == "run":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            p.error("run: no command after --")
        return Supervisor(args.name, args.workdir, command).run()
    if args.cmd == "status":
        return cmd_status(args.workdir, args.json)
    if args.cmd == "kill":
        sig = signal.Signals["SIG" + args.signal.upper().removeprefix("SIG")]
        return cmd_kill(args.workdir, args.name, sig)
    if args.cmd == "outage":
        return cmd_outage(args.workdir, args.name, args.seconds)
    if args.cmd == "ready":
        return cmd_ready(args.workdir, args.expect.split(","), args.quiet)
    return cmd_down(args.workdir, args.guard, args.timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
