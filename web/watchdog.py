"""A request watchdog for gunicorn's gthread workers (gunicorn.conf.py's hooks drive it).

gthread's heartbeat runs in the worker's main loop, so gunicorn's `timeout` never fires for a request thread that
hangs (a stuck native call, say): without a watchdog such a worker keeps its slot and its client waits forever.
A request over the limit gets a JSON 503 on its socket, and its worker stops and is replaced by the master.
"""

import os
import threading
import time
from collections.abc import Callable

OVERDUE_BODY = b'{"error": {"code": "timeout", "message": "The request ran over the time limit; try again."}}'
OVERDUE_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 5\r\nContent-Length: %d\r\n\r\n%s" % (len(OVERDUE_BODY), OVERDUE_BODY)
)


class RequestWatchdog:
    """The requests in flight in one worker process, and when each started."""

    def __init__(self, limit_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_seconds, self.clock = limit_seconds, clock
        self._in_flight: dict[int, tuple[float, object]] = {}

    def started(self, req) -> None:
        self._in_flight[id(req)] = (self.clock(), req)

    def finished(self, req) -> None:
        self._in_flight.pop(id(req), None)

    def overdue(self) -> list:
        now = self.clock()
        return [req for start, req in list(self._in_flight.values()) if now - start > self.limit_seconds]

    def watch(self, worker) -> None:
        """A daemon thread that checks once a second while the worker lives."""

        def loop() -> None:
            while worker.alive:
                time.sleep(1)
                if overdue := self.overdue():
                    self.give_up(worker, overdue)

        threading.Thread(target=loop, name="request-watchdog", daemon=True).start()

    def give_up(self, worker, overdue: list) -> None:
        for req in overdue:
            worker.log.error("%s %s ran over REQUEST_TIMEOUT (%d s): answering 503 and restarting worker %d",
                             req.method, req.path, self.limit_seconds, os.getpid())
            answer_overdue(req)
        worker.alive = False  # stop accepting; requests in flight on this worker may still finish
        time.sleep(worker.cfg.graceful_timeout)
        os._exit(1)  # the stuck thread would keep the process alive; the master starts a fresh worker


def answer_overdue(req) -> None:
    """The 503 straight onto the request's socket, which is then shut: the stuck thread's late answer goes nowhere."""
    sock = getattr(getattr(req, "unreader", None), "sock", None)
    if sock is None:
        return
    try:
        sock.sendall(OVERDUE_ANSWER)
        sock.shutdown(2)  # SHUT_RDWR
    except OSError:
        pass  # the client is already gone
