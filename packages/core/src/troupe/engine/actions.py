"""Long-running steps (helm, registry, git) as tasks of their own, recorded in status, resumed on restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

from troupe.clock import Clock, isoformat
from troupe.context import ActionRecord, Manifest, action_digest
from troupe.engine.client import Kube, NotFound, resource_path
from troupe.kinds import Action, KindSpec

logger = logging.getLogger(__name__)

Target = tuple[KindSpec, str | None, str]  # the object's kind, namespace, name


digest = action_digest


class ActionRunner:
    """Starts, cancels and records the actions the status hooks ask for."""

    def __init__(self, kube: Kube, clock: Clock, done: Callable[[Hashable], None]) -> None:
        self.kube = kube
        self.clock = clock
        self.done = done
        self.handle: Any = None  # the OperatorHandle handed to ``Action.run``; set by the runtime
        self._tasks: dict[tuple[Hashable, str], tuple[str, asyncio.Task[None]]] = {}
        # Records of steps finished in this process, by digest: the watch may still show "Running" for a
        # moment after, and a step that ends before its reconcile wrote "Running" is overwritten by it.
        self._finished: dict[tuple[Hashable, str], tuple[str, dict[str, Any]]] = {}

    def plan(
        self, key: Hashable, target: Target, requests: dict[str, dict[str, Any]], status: Manifest
    ) -> dict[str, Any]:
        """Start what is asked for and not done for these inputs; returns records to write: new Running
        ones, and a finished one again where the status shows it Running (the reconcile that started it
        wrote "Running" after the step had already recorded its end)."""
        kind = target[0]
        recorded = status.get("actions") or {}
        started: dict[str, Any] = {}
        for name, inputs in requests.items():
            action = kind.action(name)
            if action is None:
                raise ValueError(f"{kind.kind} asked for an undeclared action {name!r} (KindSpec.actions)")
            wanted = digest(inputs)
            record = recorded.get(name) or {}
            running = self._tasks.get((key, name))
            done = record.get("digest") == wanted and record.get("phase") in ("Succeeded", "Failed")
            finished = self._finished.get((key, name))
            if finished is not None and finished[0] == wanted and not done:
                if record.get("digest") == wanted and record.get("phase") == "Running":
                    started[name] = finished[1]
                continue  # done for these inputs: never run again
            if done:
                continue
            if running is not None and running[0] == wanted:
                continue  # in flight in this process
            self.cancel(key, name)
            task = asyncio.create_task(self._run(key, target, action, inputs, wanted), name=f"action {name}")
            self._tasks[key, name] = (wanted, task)
            started[name] = ActionRecord(
                digest=wanted, phase="Running", startedAt=isoformat(self.clock())
            ).model_dump()
        for owner, name in list(self._tasks):
            if owner == key and name not in requests:
                self.cancel(key, name)
        return started

    def cancel(self, key: Hashable, name: str | None = None) -> None:
        """Cancel one action of an object, or all of them (its deletion)."""
        for (owner, action), (_, task) in list(self._tasks.items()):
            if owner == key and name in (None, action):
                task.cancel()
                self._tasks.pop((owner, action), None)
        if name is None:
            self._finished = {k: v for k, v in self._finished.items() if k[0] != key}

    def close(self) -> None:
        for _, task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _run(
        self, key: Hashable, target: Target, action: Action, inputs: dict[str, Any], wanted: str
    ) -> None:
        kind, namespace, name = target
        started = isoformat(self.clock())
        try:
            result = await asyncio.wait_for(action.run(inputs, self.handle), timeout=action.timeout)
            record = ActionRecord(digest=wanted, phase="Succeeded", startedAt=started, result=result or {})
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            record = ActionRecord(
                digest=wanted,
                phase="Failed",
                startedAt=started,
                message=f"timed out after {action.timeout:g}s",
            )
        except Exception as exc:  # the plugin's step failed: record it, the status hook decides what next
            logger.warning("%s %s: action %s failed: %s", kind.kind, name, action.name, exc)
            record = ActionRecord(
                digest=wanted, phase="Failed", startedAt=started, message=str(exc) or repr(exc)
            )
        record.finishedAt = isoformat(self.clock())
        patch = {"status": {"actions": {action.name: record.model_dump()}}}
        try:
            await self.kube.request(
                "PATCH",
                resource_path(kind.api_version, kind.plural, namespace, name) + "/status",
                body=patch,
                content_type="application/merge-patch+json",
            )
        except NotFound:
            return
        finally:
            self._tasks.pop((key, action.name), None)
        self._finished[key, action.name] = (wanted, record.model_dump())
        self.done(key)
