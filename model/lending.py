"""Native engines that serve one call at a time (an OpenCV network), lent to a server's threads: at most `size`
are ever made, each lent to one caller at a time, the rest of the callers wait."""

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Lender(Generic[T]):
    def __init__(self, make: Callable[[], T], size: int) -> None:
        self._make = make
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.SimpleQueue[T] = queue.SimpleQueue()

    @property
    def made(self) -> int:
        """How many exist; read when no call is in flight, all of them are idle."""
        return self._idle.qsize()

    def give(self, item: T) -> None:
        """One made ahead (to fail early on a bad file), lent like the others."""
        self._idle.put(item)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[T]:
        """An idle one, or a new one while a slot is free and none is idle; else wait for one."""
        with self._slots:
            try:
                item = self._idle.get_nowait()
            except queue.Empty:
                item = self._make()
            try:
                yield item
            finally:
                self._idle.put(item)
