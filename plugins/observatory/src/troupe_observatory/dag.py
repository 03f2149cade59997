"""The task graph: checks the schema cannot make (unknown dependencies, cycles) and an execution order."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from troupe_observatory.models import Task


def unknown_dependencies(tasks: Sequence[Task]) -> list[str]:
    """One message per dependency naming no task, saying where it is and what exists."""
    names = {t.name for t in tasks}
    messages = []
    for task in tasks:
        for dep in task.dependencies or ():
            if dep not in names:
                known = ", ".join(sorted(names)[:10]) + (", ..." if len(names) > 10 else "")
                messages.append(
                    f"spec.tasks[{task.name}].dependencies: unknown task {dep!r} (tasks are: {known})"
                )
    return messages


def find_cycle(tasks: Sequence[Task]) -> list[str] | None:
    """A dependency cycle as task names, first name repeated at the end (a -> b -> a), or None.

    Iterative depth-first search, so a 1,000-task chain does not hit the recursion limit. Unknown
    dependencies are ignored here (reported by :func:`unknown_dependencies`).
    """
    deps = {t.name: [d for d in t.dependencies or () if d != t.name] for t in tasks}
    deps = {name: [d for d in ds if d in deps] for name, ds in deps.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if root in state:
            continue
        path: list[str] = [root]
        iters = [iter(deps[root])]
        state[root] = 1
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(deps[nxt]))
    return None


def validate(tasks: Sequence[Task]) -> list[str]:
    """Every problem of the graph, each saying what to fix."""
    messages = unknown_dependencies(tasks)
    cycle = find_cycle(tasks)
    if cycle is not None:
        messages.append(
            f"spec.tasks: dependency cycle {' -> '.join(cycle)}; remove one of these dependencies"
        )
    return messages


def topological(tasks: Sequence[Task]) -> list[Task]:
    """Tasks ordered so each comes after its dependencies; ties keep spec order (Kahn's algorithm).

    Assumes a valid graph (no cycle, no unknown dependency).
    """
    pending = {t.name: len(set(t.dependencies or ())) for t in tasks}
    dependents: dict[str, list[str]] = {t.name: [] for t in tasks}
    for task in tasks:
        for dep in set(task.dependencies or ()):
            dependents[dep].append(task.name)
    position = {t.name: i for i, t in enumerate(tasks)}
    ready = [position[n] for n, c in pending.items() if c == 0]
    heapq.heapify(ready)
    order: list[Task] = []
    while ready:
        task = tasks[heapq.heappop(ready)]
        order.append(task)
        for child in dependents[task.name]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(ready, position[child])
    return order
