"""A demo queue: a mix of jobs that pass, take a while, print, fail and die."""

from __future__ import annotations

from queuectl_tui.engine import JobSpec, Queue

DEMO_JOBS: tuple[JobSpec, ...] = (
    JobSpec(command="echo 'hello from queuectl'"),
    JobSpec(command="date -u +%FT%TZ"),
    JobSpec(command="sleep 2 && echo 'slept 2s'"),
    JobSpec(command="sleep 5 && echo 'slept 5s'"),
    JobSpec(command="for i in 1 2 3 4 5; do echo \"step $i/5\"; sleep 1; done"),
    JobSpec(command="echo 'urgent job runs first'", priority=10),
    JobSpec(command="uname -a"),
    JobSpec(command="echo 'this fails' >&2; exit 3", max_retries=2),
    JobSpec(command="no-such-command --flag", max_retries=1),
    JobSpec(command="sleep 30", timeout=2.0, max_retries=0),
    JobSpec(command="echo 'scheduled 20s later'", delay=20.0),
    JobSpec(command="seq 1 2000 | tail -n 3"),
)


def enqueue_demo(queue: Queue) -> list[str]:
    return queue.enqueue_many(list(DEMO_JOBS))
