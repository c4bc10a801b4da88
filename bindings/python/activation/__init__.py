"""Python bindings of activation: normalize, hash and distribute audiences to ad platforms.

The package loads the activation shared library through ctypes, from ``$ACTIVATION_LIBRARY``,
else next to this package, else the system library path, and checks its C ABI version.

    import activation
    with activation.Engine("activation.json") as engine:
        engine.distribute("customers", ["meta_files"]).wait(on_progress=print)
"""

from __future__ import annotations

from . import _native
from .engine import Engine, Event, Job, JobStatus, Progress, Subscription, WorkerPool
from .errors import (
    AlreadyExistsError,
    CallbackError,
    CancelledError,
    ConflictError,
    DataLossError,
    DeadlineExceededError,
    Error,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    IoError,
    LibraryError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from .hashing import HashResult, Reason, hash

__all__ = [
    "ABI_VERSION",
    "AlreadyExistsError",
    "CallbackError",
    "CancelledError",
    "ConflictError",
    "DataLossError",
    "DeadlineExceededError",
    "Engine",
    "Error",
    "Event",
    "FailedPreconditionError",
    "HashResult",
    "InternalError",
    "InvalidArgumentError",
    "IoError",
    "Job",
    "JobStatus",
    "LibraryError",
    "NotFoundError",
    "PermissionDeniedError",
    "Progress",
    "Reason",
    "ResourceExhaustedError",
    "Subscription",
    "UnauthenticatedError",
    "UnavailableError",
    "WorkerPool",
    "hash",
    "library_version",
]

ABI_VERSION = _native.ABI_VERSION
__version__ = "0.1.0"


def library_version() -> str:
    """Return the version of the loaded shared library, such as "0.1.0"."""
    return _native.library().act_version_string().decode("ascii")
