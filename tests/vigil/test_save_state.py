"""Runtime: saving state one save at a time, and the data path surviving a failing consumer."""

from __future__ import annotations

import json

import numpy as np

from detectors.traps import TrapRules


def test_two_concurrent_save_states_do_not_share_a_temporary_file(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A scheduled save (thread A) is inside np.savez when the shutdown's save (thread B) starts:
    B waits for A (one save at a time), so neither loses its temporary file to the other and the
    file left behind is whole. Without the lock A's rename fails ("No such file") because B
    renamed the shared ``detectors.npz.tmp`` first."""
    import logging
    import threading
    import types
    from unittest import mock

    import detectors.engine as engine_mod
    from detectors.engine import DetectionEngine
    from vigil.runtime import Runtime

    host = types.SimpleNamespace(
        detector=DetectionEngine(), state_path=tmp_path / "detectors.npz",
        link_state_path=tmp_path / "link-state.json", trap_rules=TrapRules(),
    )  # fmt: skip
    host._save_state = lambda: Runtime._save_state(host)  # type: ignore[attr-defined]
    real_savez = np.savez
    a_inside, b_done = threading.Event(), threading.Event()

    def savez(fh, **arrays):  # type: ignore[no-untyped-def]
        real_savez(fh, **arrays)
        if threading.current_thread().name == "A":
            a_inside.set()
            b_done.wait(5)

    with mock.patch.object(engine_mod.np, "savez", savez), caplog.at_level(logging.ERROR):
        a = threading.Thread(target=Runtime.save_state, args=(host,), name="A")
        a.start()
        assert a_inside.wait(5)
        b = threading.Thread(target=Runtime.save_state, args=(host,), name="B")
        b.start()
        b.join(0.5)
        assert b.is_alive()  # B waits for A
        b_done.set()
        a.join(5)
        b.join(5)
    assert not a.is_alive() and not b.is_alive()
    errors = [r.getMessage() for r in caplog.records if "detector state" in r.getMessage()]
    assert errors == []
    with np.load(host.state_path) as npz:  # and the file left behind is whole
        json.loads(str(npz["header"]))


def test_one_consumer_failing_on_a_batch_costs_the_others_nothing() -> None:
    """Runtime._process: the link state raising on a batch must not drop the detectors' events."""
    import asyncio
    import types

    from vigil.runtime import Runtime

    handled: list[object] = []

    def boom(samples):  # type: ignore[no-untyped-def]
        raise ValueError("bad batch")

    async def handle(events):  # type: ignore[no-untyped-def]
        handled.extend(events)

    async def main() -> None:
        host = types.SimpleNamespace(
            queue=asyncio.Queue(), reachability=types.SimpleNamespace(update=lambda s: ["unreachable"]),
            detector=types.SimpleNamespace(update=lambda s: ["rising"], series_count=1),
            trap_rules=types.SimpleNamespace(observe=boom), handle_events=handle,
            _events_total=types.SimpleNamespace(set=lambda v: None),
        )  # fmt: skip
        await host.queue.put(["a sample"])
        task = asyncio.create_task(Runtime._process(host))  # type: ignore[arg-type]
        for _ in range(50):
            await asyncio.sleep(0.01)
            if handled:
                break
        task.cancel()

    asyncio.run(main())
    assert handled == ["unreachable", "rising"]
