import asyncio
import threading

import pytest

from engine.core.aio import run_coroutine


async def _where() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name


async def _fails() -> None:
    raise ValueError("inside")


def test_runs_in_the_calling_thread_when_no_loop_runs():
    assert run_coroutine(_where) == threading.current_thread().name


def test_runs_on_a_helper_thread_inside_a_running_loop():
    async def caller() -> str:  # synchronous code called from async code, as under Playwright's sync API
        return run_coroutine(_where)

    assert asyncio.run(caller()) == "run-coroutine"


def test_an_error_reaches_the_caller_from_either_path():
    with pytest.raises(ValueError, match="inside"):
        run_coroutine(_fails)

    async def caller() -> None:
        run_coroutine(_fails)

    with pytest.raises(ValueError, match="inside"):
        asyncio.run(caller())
