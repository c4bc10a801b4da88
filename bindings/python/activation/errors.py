"""Exceptions raised by the activation package, one per error code of the library."""

from __future__ import annotations

from typing import Dict, Type


class Error(Exception):
    """A failed call of the activation library.

    ``code`` is the negative ``ACT_E*`` value of the C ABI and ``name`` its canonical name, such as
    ``"invalid_argument"``. docs/errors.md lists when each occurs and whether a retry helps.
    """

    code: int = 0
    name: str = "unknown"

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class LibraryError(Error):
    """The shared library cannot be found or loaded, or its ABI version does not match."""

    name = "library"


class InvalidArgumentError(Error, ValueError):
    code, name = -1, "invalid_argument"


class NotFoundError(Error, LookupError):
    code, name = -2, "not_found"


class AlreadyExistsError(Error):
    code, name = -3, "already_exists"


class FailedPreconditionError(Error):
    code, name = -4, "failed_precondition"


class ConflictError(Error):
    code, name = -5, "conflict"


class ResourceExhaustedError(Error):
    code, name = -6, "resource_exhausted"


class UnavailableError(Error):
    code, name = -7, "unavailable"


class DeadlineExceededError(Error, TimeoutError):
    code, name = -8, "deadline_exceeded"


class PermissionDeniedError(Error, PermissionError):
    code, name = -9, "permission_denied"


class UnauthenticatedError(Error):
    code, name = -10, "unauthenticated"


class CancelledError(Error):
    code, name = -11, "cancelled"


class DataLossError(Error):
    code, name = -12, "data_loss"


class IoError(Error):
    code, name = -13, "io_error"


class InternalError(Error):
    code, name = -14, "internal"


class CallbackError(Error):
    """A callback given to the package raised; the original exception is the ``__cause__``."""

    name = "callback"


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        ConflictError,
        ResourceExhaustedError,
        UnavailableError,
        DeadlineExceededError,
        PermissionDeniedError,
        UnauthenticatedError,
        CancelledError,
        DataLossError,
        IoError,
        InternalError,
    )
}


def error_from_code(code: int, message: str) -> Error:
    """Return the exception for a negative error code of the C ABI."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return Error(f"{message} (unknown error code {code})", code)
    return cls(message)
