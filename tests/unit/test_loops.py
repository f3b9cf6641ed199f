"""`@loop`: a timer that a commit can wake (no broker or database involved)."""

import eventlet
from nameko.containers import ServiceContainer

from chassis.loops import Alarm, loop


class Worker:
    name = "worker"
    wake_work = Alarm("work")
    runs: list[str] = []
    rings_left = 0

    @loop(interval=60)
    def work(self):
        Worker.runs.append("work")
        eventlet.sleep(0.5)

    @loop(interval=0.05)
    def producer(self):
        # Three rings while `work` runs once: they collapse into one more run.
        if Worker.rings_left:
            Worker.rings_left -= 1
            self.wake_work()


def run_for(seconds: float, rings: int) -> list[str]:
    Worker.runs, Worker.rings_left = [], rings
    container = ServiceContainer(Worker, {})
    container.start()
    eventlet.sleep(seconds)
    stop = eventlet.spawn(container.stop)
    with eventlet.Timeout(5):  # stopping does not wait for the 60 s interval
        stop.wait()
    return Worker.runs


def test_without_a_ring_the_loop_waits_for_its_interval():
    assert run_for(0.5, rings=0) == []


def test_a_ring_runs_the_loop_at_once_and_rings_during_a_run_collapse():
    assert run_for(1.5, rings=3) == ["work", "work"]
