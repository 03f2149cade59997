from __future__ import annotations

import asyncio
from collections.abc import Hashable

from troupe.engine.workqueue import WorkQueue, stirred


async def test_bursts_coalesce_into_one_rerun() -> None:
    runs: list[Hashable] = []
    gate = asyncio.Event()

    async def worker(key: Hashable) -> None:
        runs.append(key)
        await gate.wait()

    queue = WorkQueue(worker)
    queue.enqueue("a")
    await asyncio.sleep(0)
    for _ in range(10):
        queue.enqueue("a")
    queue.enqueue("b")
    gate.set()
    await queue.drain()
    assert sorted(runs) == ["a", "a", "b"]


async def test_errors_back_off_and_one_key_does_not_block_others() -> None:
    calls: dict[str, int] = {"bad": 0, "good": 0}

    async def worker(key: Hashable) -> None:
        calls[str(key)] += 1
        if key == "bad":
            raise RuntimeError("boom")

    queue = WorkQueue(worker, backoff=0.01)
    queue.enqueue("bad")
    queue.enqueue("good")
    await asyncio.sleep(0.2)
    queue.close()
    assert calls["good"] == 1
    assert 3 <= calls["bad"] <= 6  # 0.01, 0.02, 0.04, 0.08... within 0.2 s


async def test_requeue_delay_keeps_the_earliest() -> None:
    seen: list[float] = []

    async def worker(key: Hashable) -> None:
        seen.append(asyncio.get_running_loop().time())

    queue = WorkQueue(worker)
    start = asyncio.get_running_loop().time()
    queue.enqueue("a", delay=5)
    queue.enqueue("a", delay=0.05)
    queue.enqueue("a", delay=1)
    await asyncio.sleep(0.2)
    assert len(seen) == 1 and seen[0] - start < 0.2
    queue.close()


async def test_worker_delay_requeues() -> None:
    count = 0

    async def worker(key: Hashable) -> float | None:
        nonlocal count
        count += 1
        return 0.01 if count < 3 else None

    queue = WorkQueue(worker)
    queue.enqueue("a")
    await asyncio.sleep(0.2)
    assert count == 3


async def test_events_while_waiting_for_a_slot_need_no_rerun() -> None:
    # Under a burst every slot is busy: the events of a key that waits for one are all seen by its run.
    runs: list[Hashable] = []
    gate = asyncio.Event()
    outcomes: list[tuple[Hashable, str, str]] = []

    async def worker(key: Hashable) -> None:
        runs.append(key)
        if key == "a":
            await gate.wait()

    queue = WorkQueue(worker, concurrency=1, observe=lambda *seen: outcomes.append(seen))
    queue.enqueue("a", reason="object")
    await asyncio.sleep(0)
    for _ in range(5):
        queue.enqueue("b", reason="child")
    await asyncio.sleep(0)
    gate.set()
    await queue.drain()
    assert runs == ["a", "b"]
    assert outcomes == [("a", "object", "run"), ("b", "child", "run")] + [("b", "child", "pending")] * 4


async def test_events_while_running_fold_into_one_rerun_and_are_counted() -> None:
    gate = asyncio.Event()
    outcomes: list[str] = []

    async def worker(key: Hashable) -> None:
        await gate.wait()

    queue = WorkQueue(worker, observe=lambda key, reason, outcome: outcomes.append(outcome))
    queue.enqueue("a")
    await asyncio.sleep(0)
    queue.enqueue("a")
    queue.enqueue("a")
    gate.set()
    await queue.drain()
    assert outcomes == ["run", "rerun", "folded"]


async def test_a_run_replaces_the_requeue_of_the_run_before() -> None:
    # A run asks to look again in 0.3 s; an event runs it at once, and that run asks for nothing: the
    # earlier timer must not add a run of its own (it looked at everything anew).
    runs = 0

    async def worker(key: Hashable) -> float | None:
        nonlocal runs
        runs += 1
        return 0.3 if runs == 1 else None

    queue = WorkQueue(worker)
    queue.enqueue("a")
    await asyncio.sleep(0.05)
    queue.enqueue("a")
    await asyncio.sleep(0.5)
    assert runs == 2
    queue.close()


async def test_a_delay_asked_from_outside_is_kept_across_runs() -> None:
    runs = 0

    async def worker(key: Hashable) -> None:
        nonlocal runs
        runs += 1

    queue = WorkQueue(worker)
    queue.enqueue("a", delay=0.2)  # a plugin's or an action's "look again then"
    queue.enqueue("a")
    await asyncio.sleep(0.4)
    assert runs == 2
    queue.close()


async def test_an_echo_that_beat_the_response_of_its_write_needs_no_rerun() -> None:
    # The watch may bring a write of the running reconcile back before the write's response: whether it
    # was an echo is known once the run is over.
    runs = 0
    written: set[str] = set()
    outcomes: list[str] = []

    async def worker(key: Hashable) -> None:
        nonlocal runs
        runs += 1
        queue.enqueue(key, reason="object", echo=lambda: "v2" in written)  # the echo of the write below
        await asyncio.sleep(0.01)
        written.add("v2")  # the response of the write arrives
        if runs == 1:
            queue.enqueue(key, reason="child", echo=lambda: "v9" in written)  # somebody else's change

    queue = WorkQueue(worker, observe=lambda key, reason, outcome: outcomes.append(f"{reason}/{outcome}"))
    queue.enqueue("a", reason="object")
    await asyncio.sleep(0)
    await queue.drain()
    assert runs == 2
    assert outcomes == ["object/run", "object/ignored", "child/rerun", "object/ignored"]


async def test_events_within_a_batch_window_share_one_run() -> None:
    runs: list[float] = []
    outcomes: list[tuple[str, str]] = []

    async def worker(key: Hashable) -> float:
        runs.append(asyncio.get_running_loop().time())
        return 300.0  # the resync: replaced by the window, set again by the run

    queue = WorkQueue(worker, observe=lambda key, reason, outcome: outcomes.append((reason, outcome)))
    start = asyncio.get_running_loop().time()
    for _ in range(3):  # a claim binding, a pod starting, its Deployment counting it
        queue.enqueue("a", reason="child", within=0.1)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.15)
    assert len(runs) == 1 and 0.1 <= runs[0] - start < 0.15, "one run, when the window ends"
    assert outcomes == [("child", "batched")] * 3 + [("child", "run")]
    queue.enqueue("a", reason="child", within=0.1)
    queue.enqueue("a", reason="object")  # a run that starts meanwhile takes the event in
    await asyncio.sleep(0.2)
    assert len(runs) == 2, "no second run when the window ends"
    queue.close()


async def test_an_event_in_a_batch_window_during_a_run_waits_for_the_window_not_the_run() -> None:
    runs: list[float] = []
    gate = asyncio.Event()

    async def worker(key: Hashable) -> None:
        runs.append(asyncio.get_running_loop().time())
        await gate.wait()

    queue = WorkQueue(worker)
    queue.enqueue("a", reason="object")
    await asyncio.sleep(0)
    queue.enqueue("a", reason="child", within=0.1)  # while the run is busy
    queue.enqueue("a", reason="child", within=0.1, echo=lambda: False)
    gate.set()
    await asyncio.sleep(0.02)
    assert len(runs) == 1, "no rerun at once"
    await asyncio.sleep(0.15)
    assert len(runs) == 2, "one run when the window ends"
    queue.close()


async def test_a_running_worker_is_stirred_by_new_events_not_by_known_echoes() -> None:
    gate = asyncio.Event()
    stirs: list[asyncio.Event | None] = []

    async def worker(key: Hashable) -> None:
        stirs.append(stirred())
        await gate.wait()

    queue = WorkQueue(worker)
    assert stirred() is None, "outside a worker"
    queue.enqueue("a")
    await asyncio.sleep(0)
    (stir,) = stirs
    assert stir is not None and not stir.is_set()
    queue.enqueue("a", reason="child", echo=lambda: True)  # the echo of its own write, known as such
    queue.enqueue("b")
    assert not stir.is_set()
    queue.enqueue("a", reason="child", echo=lambda: False)
    assert stir.is_set()
    gate.set()
    await queue.drain()
    assert len(stirs) == 3 and stirs[2] is not stir, "the rerun has a signal of its own"


async def test_runs_that_never_wait_leave_the_loop_to_others() -> None:
    runs: list[Hashable] = []

    async def worker(key: Hashable) -> None:  # an object as it should be: no I/O, no await
        runs.append(key)

    queue = WorkQueue(worker, concurrency=4)
    for i in range(100):
        queue.enqueue(i)
    await asyncio.sleep(0)
    assert len(runs) <= 4  # not all 100 in one turn of the loop: a probe or a watch gets its turn
    await queue.drain()
    assert sorted(runs) == list(range(100))
