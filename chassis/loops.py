"""Background loops that a commit can wake.

`@loop(interval)` runs its method every `interval` seconds, like nameko's `@timer`, and also as
soon as a worker rings its `Alarm` — typically right after committing work for the loop — so
that work does not wait for the next tick. As with `@timer`, one run at a time: rings during a
run collapse into one more run after it.

    class NotifyService:
        wake_delivery = Alarm("deliver")

        @subscribe("accounts", "returnee.registered")
        def on_registered(self, event):
            with self.db.unit_of_work() as uow:
                ...  # queue notifications
            self.wake_delivery()

        @loop(interval=1.0)
        def deliver(self):
            ...
"""

import contextlib
from functools import partial

from eventlet.event import Event
from eventlet.queue import Empty, Full, LightQueue
from nameko.extensions import DependencyProvider, Entrypoint, SharedExtension


class Alarms(SharedExtension):
    """One bell per loop of the container, shared by the loop and the alarms that ring it."""

    def __init__(self, **kwargs):
        self._bells: dict[str, LightQueue] = {}
        super().__init__(**kwargs)

    def bell(self, name: str) -> LightQueue:
        return self._bells.setdefault(name, LightQueue(maxsize=1))

    def ring(self, name: str) -> None:
        with contextlib.suppress(Full):  # a ring is pending already: the run it starts sees this
            self.bell(name).put_nowait(True)


class Loop(Entrypoint):
    alarms = Alarms()

    def __init__(self, interval: float, **kwargs):
        self.interval = interval
        self._running = False
        self._thread = None
        super().__init__(**kwargs)

    def start(self):
        self._running = True
        self._thread = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._running = False
        self.alarms.ring(self.method_name)
        if self._thread is not None:
            self._thread.wait()

    def kill(self):
        if self._thread is not None:
            self._thread.kill()

    def _run(self):
        bell = self.alarms.bell(self.method_name)
        while True:
            with contextlib.suppress(Empty):
                bell.get(timeout=self.interval)
            if not self._running:
                return
            finished = Event()
            self.container.spawn_worker(self, (), {}, handle_result=partial(_finished, finished))
            finished.wait()


def _finished(event: Event, worker_ctx, result, exc_info):
    event.send()
    return result, exc_info


class Alarm(DependencyProvider):
    """`self.<name>()` wakes the service's `@loop` method `loop_name`."""

    alarms = Alarms()

    def __init__(self, loop_name: str, **kwargs):
        self.loop_name = loop_name
        super().__init__(**kwargs)

    def get_dependency(self, worker_ctx):
        return lambda: self.alarms.ring(self.loop_name)


loop = Loop.decorator
