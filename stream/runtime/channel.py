"""A bounded, closeable channel between two pipeline tasks.

End of stream is an explicit :meth:`Channel.close`, never a timeout or a guess. A consumer that
dies does not leave its producer blocked forever: both belong to the same TaskGroup, which
cancels the producer when the consumer raises.
"""

from __future__ import annotations

import asyncio
from typing import Final, Generic, TypeVar

T = TypeVar("T")


class _Closed:
    __slots__ = ()


_CLOSED: Final = _Closed()


class Channel(Generic[T]):
    """``asyncio.Queue`` with a mandatory bound and a close marker."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a channel needs a bound of at least 1 (unbounded hides overload)")
        self._queue: asyncio.Queue[T | _Closed] = asyncio.Queue(maxsize)
        self._closed = False

    async def put(self, item: T) -> None:
        if self._closed:
            raise RuntimeError("put() on a closed channel")
        await self._queue.put(item)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._queue.put(_CLOSED)

    async def get(self) -> T | None:
        """The next item, or ``None`` once the producer has closed the channel."""
        item = await self._queue.get()
        if isinstance(item, _Closed):
            # Leave the marker for any other consumer of the same channel.
            self._queue.put_nowait(item)
            return None
        return item

    def depth(self) -> int:
        """Items waiting (the queue-depth metric)."""
        return self._queue.qsize()
