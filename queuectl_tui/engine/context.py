"""What the engine's concept modules work with: one open database, its backend,
a clock, an id source and this host, plus the little each process remembers
between calls (the claim's queues, cached SQL, the lease distrust window).

`Queue` builds one `Context` and hands it to transitions, enqueue, claim,
outcomes, rescue, operator actions and reads, so none of them needs the whole
facade and none imports it.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from queuectl_tui.clock import Clock, Ids
from queuectl_tui.engine.procs import ProcessControl
from queuectl_tui.errors import QueuectlError

if TYPE_CHECKING:
    import peewee as pw

    from queuectl_tui.engine.storage.opened import Opened
    from queuectl_tui.engine.hooks import HookConfig
    from queuectl_tui.engine.resources import Capacity


def current_host() -> str:
    """This host's name; QUEUECTL_HOSTNAME overrides it (containers, tests of many hosts)."""
    return os.environ.get("QUEUECTL_HOSTNAME") or socket.gethostname()


ACTOR_ENV = "QUEUECTL_ACTOR"


@dataclass(frozen=True)
class Actor:
    """The person behind an operator action, as the audit trail (engine/audit.py)
    and a job's history name them."""

    user: str
    host: str
    via: str  # cli, console, web
    token: str | None = None  # the web token's name

    @property
    def label(self) -> str:
        """As a job's history shows it: `alice@box (cli)`, `web:ops (root@box)`."""
        if self.token is not None:
            return f"web:{self.token} ({self.user}@{self.host})"[:255]
        return f"{self.user}@{self.host} ({self.via})"[:255]


def acting(via: str) -> Actor:
    """This process's actor, for a face that is `via` (cli, console). A console
    served to a browser is told by `queuectl web`, in QUEUECTL_ACTOR=web:NAME,
    which named token opened its page: a browser has no OS user of its own."""
    told = os.environ.get(ACTOR_ENV, "")
    token = None
    if told.startswith("web:") and told[4:]:
        via, token = "web", told[4:][:64]
    try:
        user = getpass.getuser()[:64]
    except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
        user = f"uid {os.getuid()}"
    return Actor(user, current_host(), via, token)


@dataclass(eq=False)
class Context:
    """One process's handle on one database (peewee keeps a connection per thread)."""

    opened: Opened
    db: pw.Database
    backend: Any
    clock: Clock
    ids: Ids
    host: str
    # Signals to this host's processes (a rescue's leftovers, a stop), given
    # by whoever builds the Queue; None: this Queue acts on no process.
    processes: ProcessControl | None = None
    # The queues this process claims from, earlier first (None: every queue).
    serving: list[str] | None = None
    # The pool this process claims for (engine/flow.py) and what it can give
    # (None: no capacity rule: a process outside a pool, such as a test's).
    pool: str | None = None
    capacity: Capacity | None = None
    # PostgreSQL: whether the last claim found a flow rule near its limit (the
    # next counts alone), and whether this claim counts side by side (headroom.py).
    claim_alone: bool = False
    side_by_side: bool = False
    claim_again: bool = False  # the last claim left a queue out to count alone: retry now
    # The person acting through this process (a face sets it: `acting`);
    # None: the pool's own work, which the audit trail does not record.
    actor: Actor | None = None
    # Remembered between calls, never shared between processes:
    update_sql: dict[tuple[tuple[str, ...], bool], str] = field(default_factory=dict)
    hooks: HookConfig | None = None  # finish-hook commands, re-read once a second
    finished_now: list[tuple[str, str]] | None = None  # transitions._after_move's work list
    leases_trusted_from: float = 0.0  # monotonic; see rescue.distrust_leases


class Store(Protocol):
    """An open database with its backend and clock: a `Context`, or the `Queue`
    that owns one (what the faces hold when they call counts or metrics)."""

    @property
    def db(self) -> pw.Database: ...

    @property
    def backend(self) -> Any: ...

    @property
    def clock(self) -> Clock: ...


def processes_of(ctx: Context) -> ProcessControl:
    """The ProcessControl a rescue or a stop needs. A Queue built without one
    refuses rather than leave a dead worker's run alive beside the next one."""
    if ctx.processes is None:
        raise QueuectlError("this Queue was built without a ProcessControl: it cannot "
                            "rescue runs or stop workers on this host")
    return ctx.processes
