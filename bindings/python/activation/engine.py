"""The distribution engine, its jobs and its worker pool, over the C ABI."""

from __future__ import annotations

import atexit
import ctypes
import datetime
import enum
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from . import _native
from .errors import CallbackError, DeadlineExceededError, Error, InvalidArgumentError

logger = logging.getLogger("activation")

# Library log levels (ACT_LOG_TRACE to ACT_LOG_ERROR) and the logging levels they map to. Trace
# lines get level 5, below DEBUG, like the TRACE level some applications register.
_TRACE = 5
_TO_LOGGING = {0: _TRACE, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]
Seconds = Union[float, int, datetime.timedelta]


class JobStatus(str, enum.Enum):
    """The status of a distribution job. ``finished`` is true for the last four."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"  # Due later: scheduled, or waiting to retry after a failed attempt.
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED)


_STATUS_BY_CODE = list(JobStatus)


@dataclass(frozen=True)
class Progress:
    """One progress update of one destination of one job."""

    job_id: int
    destination: str
    state: str  # "pending", "running", "done", "failed" or "cancelled"
    percent: Optional[float]  # Of the source read; None when the source's size is unknown.
    rows_read: int
    accepted: int
    invalid: int
    rejected: int
    deferred: int
    rows_per_second: float
    seconds_remaining: Optional[float]
    details: Dict[str, Any] = field(repr=False)  # The whole update: counters per identifier and reason.


@dataclass(frozen=True)
class Event:
    """An event of the engine, such as ``distribution.completed`` or ``alert.queue_backlog``."""

    type: str
    job_id: int  # 0 for events of no single job.
    destination: str  # "" for job-wide events.
    data: Dict[str, Any]


def _seconds(value: Optional[Seconds], name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidArgumentError(f"{name} must be a number of seconds or a timedelta, got {value!r}")


def _progress_from_view(view: int) -> Progress:
    lib = _native.library()
    percent = lib.act_progress_percent(view)
    remaining = lib.act_progress_seconds_remaining(view)
    return Progress(
        job_id=lib.act_progress_job_id(view),
        destination=lib.act_progress_destination(view).decode("utf-8", "replace"),
        state=lib.act_progress_state(view).decode("ascii"),
        percent=None if percent < 0 else percent,
        rows_read=lib.act_progress_rows_read(view),
        accepted=lib.act_progress_rows(view, 3),
        invalid=lib.act_progress_rows(view, 0),
        rejected=lib.act_progress_rows(view, 1),
        deferred=lib.act_progress_rows(view, 2),
        rows_per_second=lib.act_progress_rows_per_second(view),
        seconds_remaining=None if remaining < 0 else remaining,
        details=json.loads(lib.act_progress_json(view)),
    )


class _CallbackErrors:
    """Keeps the first exception raised by a callback that runs on a library thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: Optional[BaseException] = None

    def record(self, error: BaseException) -> None:
        with self._lock:
            if self.first is None:
                self.first = error


class Subscription:
    """A progress or event subscription; ``close()`` (or leaving the ``with`` block) ends it.

    When ``close()`` returns, the callback is not running and will not be called again.
    """

    def __init__(self, engine: "Engine", subscription_id: int, function: Any) -> None:
        self._engine = engine
        self._id = subscription_id
        self._function = function  # The ctypes function object: the library calls it until close().

    def close(self) -> None:
        if self._function is None:
            return
        if self._engine._handle is not None:
            _native.check(_native.library().act_engine_unsubscribe(self._engine._handle, self._id))
        self._function = None

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkerPool:
    """The engine's worker threads, which claim and run distribution jobs from the store.

    Thread safety: safe for use from several threads.
    """

    def __init__(self, engine: "Engine", handle: int) -> None:
        self._engine = engine
        self._handle: Optional[int] = handle

    def stop(self, deadline: Seconds = 30.0) -> None:
        """Stop claiming jobs, give running ones ``deadline`` to finish, then return them to the queue."""
        if self._handle is None:
            return
        seconds = _seconds(deadline, "deadline") or 0.0
        _native.check(_native.library().act_worker_pool_stop(self._handle, int(seconds * 1000)))
        _native.library().act_worker_pool_destroy(self._handle)
        self._handle = None
        if self._engine._pool is self:
            self._engine._pool = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Job:
    """A distribution job of one engine. The job lives in the store; this object is a handle to it.

    Thread safety: safe for use from several threads.
    """

    def __init__(self, engine: "Engine", handle: int) -> None:
        self._engine = engine
        self._handle: Optional[int] = handle
        job_id = ctypes.c_int64()
        _native.check(_native.library().act_job_id(ctypes.byref(job_id), handle))
        self.id: int = job_id.value

    def _live(self) -> int:
        if self._handle is None:
            raise InvalidArgumentError(f"job {self.id}: this Job object was closed")
        return self._handle

    def status(self) -> JobStatus:
        """Read the job's status from the store."""
        status = ctypes.c_int()
        _native.check(_native.library().act_job_status(ctypes.byref(status), self._live()))
        return _STATUS_BY_CODE[status.value]

    def info(self) -> Dict[str, Any]:
        """Read the whole job from the store: status, attempts, errors and progress per destination."""
        return json.loads(_native.call_for_string(_native.library().act_job_json, self._live()))

    def cancel(self) -> bool:
        """Cancel the job. Return True when it stopped at once, False when a running job was asked to stop."""
        result = ctypes.c_int()
        _native.check(_native.library().act_job_cancel(ctypes.byref(result), self._live()))
        return result.value == 0

    def retry(self) -> "Job":
        """Queue the job again and return the job that was queued.

        A failed, dead-lettered or cancelled job resumes from its checkpoints, and the returned
        Job has this job's id. For a job that completed with errors, a new job of its failed
        destinations is queued with the same audience, mode and options, and its metadata
        ``retry_of`` is this job's id.
        """
        handle = ctypes.c_void_p()
        _native.check(_native.library().act_job_requeue(ctypes.byref(handle), self._live()))
        return Job(self._engine, handle.value)

    def export_outcomes(self, csv_path: Union[str, "os.PathLike[str]"]) -> None:
        """Write the invalid, rejected and deferred rows with their reasons to a CSV file."""
        _native.check(_native.library().act_job_export_outcomes(self._live(), os.fsencode(csv_path)))

    def wait(
        self,
        on_progress: Optional[Callable[[Progress], None]] = None,
        timeout: Optional[Seconds] = None,
        run_workers: bool = True,
        poll_interval: float = 0.1,
    ) -> JobStatus:
        """Wait until the job is finished and return its status.

        ``on_progress`` receives each progress update of this job, on a library thread. When
        ``run_workers`` is true and this engine runs no worker pool, one runs for the duration of
        the wait. Raises DeadlineExceededError when ``timeout`` seconds pass first, and
        CallbackError when ``on_progress`` raised. The job goes on in both cases, and a pool
        started by this wait returns it to the queue.
        """
        handle = self._live()
        limit = _seconds(timeout, "timeout")
        errors = _CallbackErrors()
        subscription = self._engine.on_progress(on_progress, job_id=self.id, _errors=errors) if on_progress else None
        pool = self._engine.start_workers() if run_workers and self._engine._pool is None else None
        deadline = None if limit is None else time.monotonic() + limit
        try:
            while True:
                if errors.first is not None:
                    raise CallbackError(
                        f"job {self.id}: on_progress raised {type(errors.first).__name__}: {errors.first}"
                    ) from errors.first
                status = ctypes.c_int()
                _native.check(_native.library().act_job_status(ctypes.byref(status), handle))
                current = _STATUS_BY_CODE[status.value]
                if current.finished:
                    return current
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceededError(
                        f"job {self.id} did not finish within {limit:g} seconds; its status is {current.value}"
                    )
                time.sleep(poll_interval)
        finally:
            if subscription is not None:
                subscription.close()
            if pool is not None:
                pool.stop(deadline=1.0)

    def close(self) -> None:
        """Release the handle; the job in the store is unchanged."""
        if self._handle is not None:
            _native.library().act_job_destroy(self._handle)
            self._handle = None

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"Job(id={self.id})"


_open_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
# Handles of engines collected on a library thread, inside a callback, where the library refuses
# to close them; they are closed at exit.
_unclosed_handles: List[int] = []


@atexit.register
def _close_open_engines() -> None:
    # Library threads must not call into Python once the interpreter is shutting down.
    for engine in list(_open_engines):
        try:
            engine.close()
        except Exception:
            pass
    while _unclosed_handles:
        _native.library().act_engine_destroy(_unclosed_handles.pop())


class Engine:
    """Distributes audiences to destinations through the durable job queue of its store.

    ``config`` is a configuration file path, a mapping with the configuration, or JSON text (a
    string starting with ``{``). Relative paths in a file resolve against its folder; in a mapping
    or text, against ``base_dir`` (default: the current folder). Log lines go to the ``activation``
    logger and its children (``activation.engine``, ``activation.queue``, ...), at ``log_level``
    and above (default: the ``activation`` logger's effective level when the engine opens).

    Thread safety: safe for use from several threads. Callbacks run on library threads, and an
    engine cannot be closed from inside one of them.
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        base_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        workers: Optional[int] = None,
        log_level: Optional[int] = None,
    ) -> None:
        self._handle: Optional[int] = None
        self._pool: Optional[WorkerPool] = None
        self._lock = threading.Lock()
        lib = _native.library()

        options = ctypes.c_void_p()
        _native.check(lib.act_engine_options_open(ctypes.byref(options)))
        try:
            if base_dir is not None:
                _native.check(lib.act_engine_options_set_base_dir(options, os.fsencode(base_dir)))
            if workers is not None:
                _native.check(lib.act_engine_options_set_workers(options, int(workers)))
            level = log_level if log_level is not None else logger.getEffectiveLevel()
            # Kept on the engine: the library calls it until close() returns.
            self._log_function = _native.LOG_FN(_forward_log)
            library_level = next((code for code, mapped in sorted(_TO_LOGGING.items()) if mapped >= level), 4)
            _native.check(lib.act_engine_options_set_log_callback(options, library_level, self._log_function, None))

            handle = ctypes.c_void_p()
            if isinstance(config, Mapping):
                _native.check(lib.act_engine_open(ctypes.byref(handle), json.dumps(config).encode("utf-8"), options))
            elif isinstance(config, str) and config.lstrip().startswith("{"):
                _native.check(lib.act_engine_open(ctypes.byref(handle), config.encode("utf-8"), options))
            elif isinstance(config, (str, os.PathLike)):
                _native.check(lib.act_engine_open_file(ctypes.byref(handle), os.fsencode(config), options))
            else:
                raise InvalidArgumentError(
                    f"config must be a file path, a mapping or JSON text, got {type(config).__name__}"
                )
        finally:
            lib.act_engine_options_destroy(options)
        self._handle = handle.value
        _open_engines.add(self)

    def _live(self) -> int:
        if self._handle is None:
            raise InvalidArgumentError("this Engine was closed")
        return self._handle

    def distribute(
        self,
        audience: str,
        destinations: Union[str, Sequence[str]],
        *,
        mode: str = "add",
        dry_run: bool = False,
        priority: Union[str, int] = "normal",
        batch_size: Optional[int] = None,
        parallelism: Optional[int] = None,
        delay: Optional[Seconds] = None,
        expire_after: Optional[Seconds] = None,
        metadata: Optional[Mapping[str, str]] = None,
        dedup_key: Optional[str] = None,
    ) -> Job:
        """Validate the request, store the job and queue it; return at once.

        ``mode`` is add, remove, replace or mirror; ``priority`` low, normal, high or critical.
        Raises NotFoundError for an unknown audience or destination, InvalidArgumentError for a bad
        option, with a message that names it.
        """
        request: Dict[str, Any] = {
            "audience": audience,
            "destinations": [destinations] if isinstance(destinations, str) else list(destinations),
            "mode": mode,
            "dry_run": dry_run,
            "priority": priority,
        }
        optional = {
            "batch_size": batch_size,
            "parallelism": parallelism,
            "delay_seconds": _seconds(delay, "delay"),
            "expire_after_seconds": _seconds(expire_after, "expire_after"),
            "metadata": dict(metadata) if metadata is not None else None,
            "dedup_key": dedup_key,
        }
        request.update({key: value for key, value in optional.items() if value is not None})
        handle = ctypes.c_void_p()
        _native.check(
            _native.library().act_engine_distribute(
                ctypes.byref(handle), None, self._live(), json.dumps(request).encode("utf-8")
            )
        )
        return Job(self, handle.value)

    def job(self, job_id: int) -> Job:
        """Return a handle of an existing job; NotFoundError for an unknown id."""
        handle = ctypes.c_void_p()
        _native.check(_native.library().act_job_open(ctypes.byref(handle), self._live(), int(job_id)))
        return Job(self, handle.value)

    def jobs(self, audience: Optional[str] = None, limit: int = 100) -> List[Dict[str, Any]]:
        """List distribution jobs, newest first, as dictionaries (the form of ``Job.info()``)."""
        return json.loads(
            _native.call_for_string(_native.library().act_engine_jobs, self._live(), _native.encode(audience), limit)
        )

    def history(self, audience: str, limit: int = 100) -> List[Dict[str, Any]]:
        """List the jobs of one audience, newest first."""
        return json.loads(
            _native.call_for_string(_native.library().act_engine_history, self._live(), _native.encode(audience), limit)
        )

    def dead_letters(self, limit: int = 100) -> List[Dict[str, Any]]:
        """List the dead-letter queue: jobs whose last attempt failed, newest first."""
        return json.loads(_native.call_for_string(_native.library().act_engine_dead_letters, self._live(), limit))

    def queue_metrics(self) -> Dict[str, int]:
        """Count the queue's jobs by state (waiting, delayed, active, completed, ..., stalled)."""
        return json.loads(_native.call_for_string(_native.library().act_engine_queue_metrics, self._live()))

    def metrics_text(self) -> str:
        """Return queue and destination metrics in the Prometheus text format."""
        return _native.call_for_string(_native.library().act_engine_metrics_text, self._live())

    def check_alerts(self) -> None:
        """Evaluate the alert conditions now; changes are published as ``alert.*`` events."""
        _native.check(_native.library().act_engine_check_alerts(self._live()))

    def run_until_idle(self, timeout: Seconds = 600.0) -> Dict[str, int]:
        """Run a worker pool until no distribution job is waiting, delayed or running.

        Returns the pool's counts; raises DeadlineExceededError when ``timeout`` passes first.
        """
        seconds = _seconds(timeout, "timeout") or 0.0
        return json.loads(
            _native.call_for_string(_native.library().act_engine_run_until_idle, self._live(), int(seconds * 1000))
        )

    def start_workers(self, threads: int = 0) -> WorkerPool:
        """Start this engine's worker pool (``threads`` 0: the configured count) and return it."""
        with self._lock:
            handle = ctypes.c_void_p()
            _native.check(_native.library().act_worker_pool_open(ctypes.byref(handle), self._live(), int(threads)))
            self._pool = WorkerPool(self, handle.value)
            return self._pool

    def on_progress(
        self, callback: Callable[[Progress], None], job_id: int = 0, *, _errors: Optional[_CallbackErrors] = None
    ) -> Subscription:
        """Call ``callback`` with every progress update of ``job_id`` (0: of every job).

        The callback runs on library threads. An exception it raises is logged and ignored.
        """

        def trampoline(view: int, user_data: Optional[int]) -> None:
            try:
                callback(_progress_from_view(view))
            except BaseException as error:  # Nothing may propagate into the library's thread.
                if _errors is not None:
                    _errors.record(error)
                else:
                    logger.exception("activation: a progress callback raised")

        function = _native.PROGRESS_FN(trampoline)
        subscription_id = ctypes.c_uint64()
        _native.check(
            _native.library().act_engine_subscribe_progress(
                ctypes.byref(subscription_id), self._live(), int(job_id), function, None
            )
        )
        return Subscription(self, subscription_id.value, function)

    def on_event(self, callback: Callable[[Event], None], prefix: str = "") -> Subscription:
        """Call ``callback`` with every event whose type starts with ``prefix`` ("alert." for alerts).

        The callback runs on library threads. An exception it raises is logged and ignored.
        """

        def trampoline(
            type_: bytes, job_id: int, destination: bytes, data_json: bytes, user_data: Optional[int]
        ) -> None:
            try:
                callback(
                    Event(
                        type=type_.decode("utf-8", "replace"),
                        job_id=job_id,
                        destination=destination.decode("utf-8", "replace"),
                        data=json.loads(data_json),
                    )
                )
            except BaseException:  # Nothing may propagate into the library's thread.
                logger.exception("activation: an event callback raised")

        function = _native.EVENT_FN(trampoline)
        subscription_id = ctypes.c_uint64()
        _native.check(
            _native.library().act_engine_subscribe_events(
                ctypes.byref(subscription_id), self._live(), prefix.encode("utf-8"), function, None
            )
        )
        return Subscription(self, subscription_id.value, function)

    def close(self) -> None:
        """Stop the workers, end the callbacks and close the store. Closing twice does nothing."""
        if self._handle is None:
            return
        lib = _native.library()
        lib.act_clear_error()
        lib.act_engine_destroy(self._handle)
        if lib.act_last_error_code() != 0:
            # Refused from inside a callback: the engine stays open.
            _native.check(lib.act_last_error_code())
        self._handle = None
        self._pool = None
        _open_engines.discard(self)

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        handle = self._handle
        try:
            self.close()
        except Exception:
            if handle is not None:
                _unclosed_handles.append(handle)


def _forward_log(level: int, component: Optional[bytes], message: Optional[bytes], user_data: Optional[int]) -> None:
    try:
        name = (component or b"library").decode("utf-8", "replace")
        logging.getLogger(f"activation.{name}").log(
            _TO_LOGGING.get(level, logging.ERROR), "%s", (message or b"").decode("utf-8", "replace")
        )
    except BaseException:  # Nothing may propagate into the library's thread.
        pass
