"""The one vocabulary of job states: the names, their groups, the moves between
them and the words people use for them.

Every state a job row can hold is a `State`, a `str` so it stores, compares
and prints as its name (as rq's `JobStatus`). The CLI, the console and the docs
say these words; `docs/architecture.md` draws its diagram from `MOVES` (a test
keeps the two the same).
"""

from __future__ import annotations

from enum import Enum

from queuectl_tui.errors import UsageError


class State(str, Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"  # waiting for its retry; a final failure is DEAD
    DEAD = "dead"  # the dead-letter queue
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # waiting for the jobs it was enqueued --after
    # A big bulk enqueue's rows before their batch is published: no job yet for
    # anyone but the batch's writer (engine/batches.py).
    STAGED = "staged"
    # Put aside by a person (`hold`, `enqueue --hold`; pueue's stash): never
    # claimed until `release` moves it on.
    HELD = "held"

    def __str__(self) -> str:
        return self.value


# The states a user sees; `staged` rows are not jobs yet.
STATES: tuple[State, ...] = (State.PENDING, State.PROCESSING, State.COMPLETED, State.FAILED,
                             State.DEAD, State.CANCELLED, State.BLOCKED, State.HELD)
CLAIMABLE = (State.PENDING, State.FAILED)  # a worker may take it (when due)
HOLDABLE = (*CLAIMABLE, State.BLOCKED)  # `hold` puts it aside
# Not running, not finished: cancelled at once; what `edit` may change.
WAITING = (*HOLDABLE, State.HELD)
FINAL = (State.COMPLETED, State.DEAD, State.CANCELLED)  # a run series is over
UNFINISHED = (State.STAGED, State.PENDING, State.FAILED, State.PROCESSING)
ENDED_BADLY = (State.FAILED, State.DEAD)  # a run that did not succeed

# The state machine: which moves exist at all.
MOVES: dict[State, tuple[State, ...]] = {
    State.PENDING: (State.PROCESSING, State.CANCELLED, State.HELD),  # claimed; cancelled; held
    State.FAILED: (State.PROCESSING, State.CANCELLED, State.HELD),  # retried; cancelled; held
    # finished, failed (retry later), DLQ, back to the queue (rescue, stop now), cancelled
    State.PROCESSING: (State.COMPLETED, State.FAILED, State.DEAD, State.PENDING,
                       State.CANCELLED),
    # dlq retry, requeue; blocked again while a dependency has not completed
    State.DEAD: (State.PENDING, State.BLOCKED),
    State.COMPLETED: (State.PENDING, State.BLOCKED),
    State.CANCELLED: (State.PENDING, State.BLOCKED),
    # released when its dependencies complete; cancelled with the reason when
    # one of them ends dead or cancelled (engine/dependencies.py)
    State.BLOCKED: (State.PENDING, State.CANCELLED, State.HELD),
    # released: pending, or blocked while a dependency has not completed, or
    # cancelled with the reason when one ended dead or cancelled (engine/hold.py);
    # cancelled too, naming it, when a dependency ends so while it is held
    State.HELD: (State.PENDING, State.BLOCKED, State.CANCELLED),
    # moved in slices when its batch is published (held: enqueued --hold)
    State.STAGED: (State.PENDING, State.HELD),
}

# The console's word for each state (its tabs). `failed` is not final: it is a
# job waiting for its retry ("Retrying"); a final failure is `dead`.
STATE_LABELS: dict[State, str] = {
    State.PENDING: "Pending", State.BLOCKED: "Blocked", State.PROCESSING: "Running",
    State.FAILED: "Retrying", State.DEAD: "Dead", State.COMPLETED: "Done",
    State.CANCELLED: "Cancelled", State.HELD: "Held"}
# Every word accepted for a state, by every command and filter: the names, the
# console's labels, and a few more people use. Stored and printed: the names.
STATE_ALIASES: dict[str, State] = {
    **{state.value: state for state in STATES},
    **{label.lower(): state for state, label in STATE_LABELS.items()},
    "waiting": State.PENDING, "queued": State.PENDING, "busy": State.PROCESSING,
    "ok": State.COMPLETED, "retry": State.FAILED, "dlq": State.DEAD,
    "canceled": State.CANCELLED, "after": State.BLOCKED,
    "stashed": State.HELD, "hold": State.HELD, "on-hold": State.HELD}


def state_named(word: str) -> State | None:
    """The state a word means (`running` -> processing), or None."""
    return STATE_ALIASES.get(word.strip().lower())


def describe_state(state: str) -> str:
    """A state for a message: its name, and the console's word when it differs
    (`processing (running)`), so both vocabularies read the same sentence."""
    name = str(state)
    label = STATE_LABELS.get(name, name).lower()  # type: ignore[call-overload]
    return name if label == name else f"{name} ({label})"


def check_state(word: str) -> State:
    """The state a word names, console words included (`running`, `done`)."""
    name = state_named(word)
    if name is None:
        raise UsageError(f"unknown state {word!r}; states: "
                         + ", ".join(describe_state(state) for state in STATES))
    return name


def can_move(from_state: str, to_state: str) -> bool:
    """Whether the state machine has this move at all."""
    return to_state in MOVES.get(from_state, ())  # type: ignore[call-overload]
