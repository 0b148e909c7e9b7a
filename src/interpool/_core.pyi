"""Type stubs for interpool._core, the C++ engine (src/python/*.cpp).

Public: the shared objects (SharedBuffer, Shared, Queue, Lock, RLock, Event,
Semaphore, Barrier), share() and TaskInterrupted, re-exported by interpool.
The rest is the contract with the package (interpool._pool, _aworker, _aio,
_trio, _byvalue, _output, _check): keep it in step with the binding's method
tables and records (src/python/records.hpp).
"""

import types
from collections.abc import Callable
from typing import Any, Final, Generic, Literal, Protocol, Self, TypeVar, final, type_check_only

from ._errors import BrokenPool

_T = TypeVar("_T")

# ------------------------------------------------------------ public types

class TaskInterrupted(BaseException):
    """Raised inside a task to stop it (Future.interrupt(), a timeout, a shutdown or Ctrl-C)."""

@final
class SharedBuffer:
    """Writable memory owned by the engine; the buffer protocol in every interpreter."""

    def __new__(cls, size_or_data: int | bytes | bytearray | memoryview, *, readonly: bool = False) -> Self: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def released(self) -> bool: ...
    def release(self) -> None: ...
    def cast(self, format: str, shape: list[int] | tuple[int, ...] | None = None) -> memoryview: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __release_buffer__(self, buffer: memoryview, /) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Shared(Generic[_T]):
    """A frozen snapshot of an object, made by share(obj); passed to tasks in O(1)."""

    @property
    def value(self) -> _T: ...
    @property
    def nbytes(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def share(obj: _T, /) -> Shared[_T]:
    """Encode a frozen snapshot of obj once, into engine memory, for O(1) passing to tasks."""

@final
class Queue(Generic[_T]):
    """A FIFO queue shared by every interpreter (queue.Queue's interface)."""

    def __new__(cls, maxsize: int = 0) -> Self: ...
    def __class_getitem__(cls, item: Any, /) -> types.GenericAlias: ...
    @property
    def closed(self) -> bool: ...
    @property
    def maxsize(self) -> int: ...
    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None: ...
    def get(self, block: bool = True, timeout: float | None = None) -> _T: ...
    def put_nowait(self, item: _T, /) -> None: ...
    def get_nowait(self) -> _T: ...
    def qsize(self) -> int: ...
    def empty(self) -> bool: ...
    def full(self) -> bool: ...
    def close(self) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@type_check_only
class _LockInterface(Protocol):
    """threading.Lock's interface, which Lock and RLock both implement (no such class at run time)."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def locked(self) -> bool: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Lock(_LockInterface):
    """A mutual-exclusion lock shared by every interpreter (threading.Lock's interface)."""

    def __new__(cls) -> Self: ...

@final
class RLock(_LockInterface):
    """A reentrant lock shared by every interpreter (threading.RLock's interface)."""

    def __new__(cls) -> Self: ...
    def _is_owned(self) -> bool: ...
    def _release_save(self) -> tuple[int, int]: ...
    def _acquire_restore(self, state: tuple[int, int], /) -> None: ...

@final
class Event:
    """A flag shared by every interpreter (threading.Event's interface)."""

    def __new__(cls) -> Self: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Semaphore:
    """A counting semaphore shared by every interpreter (threading.Semaphore's interface)."""

    def __new__(cls, value: int = 1, *, bounded: bool = False) -> Self: ...
    @property
    def _value(self) -> int: ...
    @property
    def bounded(self) -> bool: ...
    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool: ...
    def release(self, n: int = 1) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Barrier:
    """A barrier shared by every interpreter (threading.Barrier's interface)."""

    def __new__(
        cls, parties: int, action: Callable[[], object] | None = None, timeout: float | None = None
    ) -> Self: ...
    parties: Final[int]
    @property
    def n_waiting(self) -> int: ...
    @property
    def broken(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def reset(self) -> None: ...
    def abort(self) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

# ------------------------------------------- the package's contract (internal)

@type_check_only
class _SubmitCall(Protocol):
    """Engine.submit, submit_local and submit_deferred: one signature (no such class at run time)."""

    def __call__(
        self,
        future: object,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: dict[str, Any] | None,
        bridge: object = None,
        timeout: float | None = None,
        /,
    ) -> Task: ...

@final
class Engine:
    """Worker interpreters and their task queue (made by interpool._pool.Pool)."""

    def __new__(
        cls,
        *,
        workers: int,
        max_tasks: int,
        sys_path: list[str],
        setup: object,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        rebuild: Callable[..., BaseException],
        broken_type: type[BrokenPool],
        name_prefix: str,
        local_threads: int = 0,
        max_deferred: int = 1,
        finalizer: Callable[..., object] | None = None,
        finalargs: tuple[Any, ...] = (),
        stateless: bool = False,
        task_timeout: float = 0.0,
        interrupt_grace: float = 1.0,
        lazy_workers: bool = False,
        forward_output: bool = True,
    ) -> Self: ...
    submit: _SubmitCall
    submit_local: _SubmitCall  # runs on a thread of this interpreter (HybridPool)
    submit_deferred: _SubmitCall  # runs in a worker's event loop (AsyncPool; WorkerSlot)
    def submit_map(
        self,
        future: object,
        fn: Callable[..., object],
        items: list[tuple[Any, ...]],
        bridge: object = None,
        timeout: float | None = None,
        /,
    ) -> Task: ...
    def shutdown(self, wait: bool, cancel_futures: bool, interrupt: bool = False, /) -> list[tuple[Any, Any]]:
        """The (future, bridge or None) of each task cancelled."""
    def stats(self) -> dict[str, Any]:
        """queued, running, done, failed, cancelled, interrupted, timed_out,
        workers_replaced (ints) and workers: a list of dicts with index,
        future, initializing, seconds and native_id."""
    workers: Final[int]
    # Read-only at run time, and changing: only the package reads them.
    broken: bool
    broken_reason: str | None
    queued: int
    accepting: bool
    on_own_thread: bool  # whether the calling thread is one of the pool's

@final
class Task:
    """The engine side of one submitted task."""

    def cancel(self) -> bool: ...
    def interrupt(self) -> bool: ...
    def request_cancel(self) -> bool: ...
    def settle(self, timeout: float | None, /) -> bool: ...
    # Read-only at run time, and changing: only the package reads them.
    running: bool
    finished: bool

@final
class Completion:
    """The worker side of a deferred task: complete it exactly once."""

    def set_result(self, value: object, /) -> bool: ...
    def set_exception(self, exc: BaseException, /) -> None: ...
    def finish(self) -> int: ...
    id: Final[int]
    # Read-only at run time, and changing: only the package reads them.
    cancel_requested: bool
    done: bool

@final
class WorkerSlot:
    """One engine worker's mailbox for deferred tasks."""

    def fileno(self) -> int: ...
    def take_requests(self) -> Requests: ...

# The records of the contract (src/python/records.hpp): immutable, their
# fields read-only attributes set once, at construction (hence Final).

@final
class Launch:
    """One deferred task for the event loop of an AsyncPool worker (made by the engine)."""

    completion: Final[Completion]
    fn: Final[Callable[..., Any]]
    args: Final[tuple[Any, ...]]
    kwargs: Final[dict[str, Any] | None]

@final
class Requests:
    """What WorkerSlot.take_requests() returns (made by the engine)."""

    launches: Final[list[Launch]]
    cancels: Final[list[int]]  # Completion.id of each task to cancel

@final
class Delivery:
    """One result bound for an event loop: the items of a loop bridge's push_many()."""

    def __new__(cls, *, future: Any, outcome: object, is_exception: bool) -> Self: ...
    future: Final[Any]
    outcome: Final[Any]
    is_exception: Final[bool]

@final
class Guard:
    """One condition under which the caller reuses a by-value encoding (interpool._byvalue)."""

    def __new__(cls, *, container: object, key: object, expected: object) -> Self: ...
    container: Final[object]
    key: Final[object]
    expected: Final[object]

_FailureKind = Literal["exception", "broken", "cancelled"]

@final
class Failure:
    """How a task failed, as it crosses interpreters (internal)."""

    def __new__(
        cls,
        *,
        kind: _FailureKind,
        pickled: bytes | None = None,
        type_name: str | None = None,
        message: str | None = None,
        traceback: str | None = None,
        module: str | None = None,
        qualname: str | None = None,
        reason: str | None = None,
        cause: Failure | None = None,
        notice: bool = False,
    ) -> Self: ...
    # Set once, by the constructor: read-only.
    kind: Final[_FailureKind]
    pickled: Final[bytes | None]
    type_name: Final[str | None]
    message: Final[str | None]
    traceback: Final[str | None]
    module: Final[str | None]
    qualname: Final[str | None]
    reason: Final[str | None]
    cause: Final[Failure | None]
    notice: Final[bool]

@final
class LoopWaker:
    """An eventfd that wakes one asyncio event loop."""

    def __new__(cls) -> Self: ...
    def deliver(self, rebuild: Callable[..., BaseException], cancelled_error: type[BaseException], /) -> bool: ...
    def discard(self) -> None: ...
    def fileno(self) -> int: ...
    def signal(self) -> None: ...

_OutputKind = Literal[1, 2]  # sys.stdout, sys.stderr

def _handle_from_context(kind: int, index: int, /) -> Any: ...
def current_worker_slot() -> WorkerSlot: ...
def output_write(kind: _OutputKind, text: str, /) -> None: ...
def output_flush(kind: _OutputKind, /) -> None: ...
def output_record(data: bytes, /) -> None: ...
def shutdown_all() -> None: ...
def _current_frames() -> dict[int, types.FrameType]: ...
def _current_exceptions() -> dict[int, BaseException | None]: ...
