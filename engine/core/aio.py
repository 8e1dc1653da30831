"""Run a coroutine to its end from plain (synchronous) code, whatever the calling thread already runs.

`asyncio.run` refuses to start in a thread whose event loop is running. That happens to synchronous code called
from inside async code: Playwright's sync API keeps a loop running in the main thread for a whole test session,
and a notebook cell runs inside one. Then the coroutine runs on a helper thread with its own loop, and the caller
waits for it; an exception it raises is raised in the caller's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def run_coroutine(main: Callable[[], Awaitable[T]]) -> T:
    """`asyncio.run(main())`, also from a thread that already runs a loop. `main` makes the coroutine, so that it
    is created in the thread (and loop) that runs it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_awaited(main))
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(_awaited(main)))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="run-coroutine", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _awaited(main: Callable[[], Awaitable[T]]) -> T:
    return await main()
