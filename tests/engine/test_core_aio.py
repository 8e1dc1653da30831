import asyncio
import threading

import pytest

from engine.core.aio import run_coroutine


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fails() -> None:
    raise ValueError("inside")


def _in_a_plain_thread(fn):
    """Run fn in a new thread with no event loop: the test session's main thread may run one (Playwright's sync
    API, started by the browser tests, keeps a loop running there for the rest of the session)."""
    out: list = []

    def target() -> None:
        try:
            out.append(("ok", fn()))
        except BaseException as exc:  # handed back to the test
            out.append(("error", exc))

    t = threading.Thread(target=target, name="plain")
    t.start()
    t.join()
    kind, value = out[0]
    if kind == "error":
        raise value
    return value


def test_runs_in_the_calling_thread_when_no_loop_runs():
    assert _in_a_plain_thread(lambda: run_coroutine(_where)) == "plain"


def test_runs_on_a_helper_thread_inside_a_running_loop():
    async def caller() -> str:  # synchronous code called from async code, as under Playwright's sync API
        return run_coroutine(_where)

    assert _in_a_plain_thread(lambda: asyncio.run(caller())) == "run-coroutine"


def test_an_error_reaches_the_caller_from_either_path():
    with pytest.raises(ValueError, match="inside"):
        _in_a_plain_thread(lambda: run_coroutine(_fails))

    async def caller() -> None:
        run_coroutine(_fails)

    with pytest.raises(ValueError, match="inside"):
        _in_a_plain_thread(lambda: asyncio.run(caller()))
