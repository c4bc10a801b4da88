"""Loading of the shared library and the ctypes prototypes of its C ABI (activation.h)."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading
from typing import Any, List, Optional

from .errors import LibraryError, error_from_code

# The C ABI major version this package was written against. A library whose act_abi_version()
# differs may have removed or changed functions, so loading it is refused.
ABI_VERSION = 0

LIBRARY_ENV = "ACTIVATION_LIBRARY"

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)
PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int64, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)

_p = ctypes.c_void_p
_pp = ctypes.POINTER(ctypes.c_void_p)
_str = ctypes.c_char_p
_out_str = ctypes.POINTER(ctypes.c_void_p)  # char**: read as an address, released with act_free
_int = ctypes.c_int
_i64 = ctypes.c_int64
_u64 = ctypes.c_uint64

# name: (return type, argument types)
_PROTOTYPES = {
    "act_version_string": (_str, []),
    "act_version_number": (_int, []),
    "act_abi_version": (_int, []),
    "act_error_name": (_str, [_int]),
    "act_last_error_message": (_str, []),
    "act_last_error_code": (_int, []),
    "act_clear_error": (None, []),
    "act_free": (None, [_p]),
    "act_engine_options_open": (_int, [_pp]),
    "act_engine_options_destroy": (None, [_p]),
    "act_engine_options_set_base_dir": (_int, [_p, _str]),
    "act_engine_options_set_workers": (_int, [_p, _int]),
    "act_engine_options_set_log_callback": (_int, [_p, _int, LOG_FN, _p]),
    "act_engine_open": (_int, [_pp, _str, _p]),
    "act_engine_open_file": (_int, [_pp, _str, _p]),
    "act_engine_destroy": (None, [_p]),
    "act_engine_distribute": (_int, [_pp, _out_str, _p, _str]),
    "act_engine_jobs": (_int, [_out_str, _p, _str, _int]),
    "act_engine_history": (_int, [_out_str, _p, _str, _int]),
    "act_engine_dead_letters": (_int, [_out_str, _p, _int]),
    "act_engine_queue_metrics": (_int, [_out_str, _p]),
    "act_engine_metrics_text": (_int, [_out_str, _p]),
    "act_engine_run_until_idle": (_int, [_out_str, _p, _i64]),
    "act_engine_check_alerts": (_int, [_p]),
    "act_engine_subscribe_progress": (_int, [ctypes.POINTER(_u64), _p, _i64, PROGRESS_FN, _p]),
    "act_engine_subscribe_events": (_int, [ctypes.POINTER(_u64), _p, _str, EVENT_FN, _p]),
    "act_engine_unsubscribe": (_int, [_p, _u64]),
    "act_job_open": (_int, [_pp, _p, _i64]),
    "act_job_destroy": (None, [_p]),
    "act_job_id": (_int, [ctypes.POINTER(_i64), _p]),
    "act_job_status": (_int, [ctypes.POINTER(_int), _p]),
    "act_job_json": (_int, [_out_str, _p]),
    "act_job_wait": (_int, [ctypes.POINTER(_int), _p, _i64, PROGRESS_FN, _p]),
    "act_job_cancel": (_int, [ctypes.POINTER(_int), _p]),
    "act_job_retry": (_int, [_p]),
    "act_job_requeue": (_int, [_pp, _p]),
    "act_job_export_outcomes": (_int, [_p, _str]),
    "act_worker_pool_open": (_int, [_pp, _p, _int]),
    "act_worker_pool_stop": (_int, [_p, _i64]),
    "act_worker_pool_destroy": (None, [_p]),
    "act_progress_job_id": (_i64, [_p]),
    "act_progress_destination": (_str, [_p]),
    "act_progress_state": (_str, [_p]),
    "act_progress_percent": (ctypes.c_double, [_p]),
    "act_progress_rows_read": (_u64, [_p]),
    "act_progress_rows": (_u64, [_p, _int]),
    "act_progress_rows_per_second": (ctypes.c_double, [_p]),
    "act_progress_seconds_remaining": (ctypes.c_double, [_p]),
    "act_progress_json": (_str, [_p]),
    "act_hash": (_int, [_out_str, _str, _str, ctypes.c_char_p, ctypes.c_size_t, _str]),
}

_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None


def candidate_paths() -> List[str]:
    """Return the places searched for the shared library, in order."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    bundled = sorted(glob.glob(os.path.join(package_dir, "libactivation.so*")))
    bundled += sorted(glob.glob(os.path.join(package_dir, "libactivation*.dylib")))
    system = ctypes.util.find_library("activation")
    candidates = bundled + ([system] if system else [])
    candidates.append(f"libactivation.so.{ABI_VERSION}")
    return candidates


def _open_library() -> ctypes.CDLL:
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        # A path the user set is the only one tried, so that a wrong setting is never hidden by
        # another copy of the library found elsewhere.
        try:
            return ctypes.CDLL(explicit)
        except OSError as error:
            raise LibraryError(f"cannot load the activation library from ${LIBRARY_ENV}={explicit}: {error}") from None
    tried = []
    for candidate in candidate_paths():
        try:
            return ctypes.CDLL(candidate)
        except OSError as error:
            tried.append(f"{candidate} ({error})")
    raise LibraryError(
        "cannot find the activation shared library (libactivation.so); set "
        f"${LIBRARY_ENV} to its path, put it next to the activation package, or install it on the "
        "system library path. Tried: " + "; ".join(tried)
    )


def _bind(library: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            function = getattr(library, name)
        except AttributeError:
            raise LibraryError(f"the activation library at {library._name} has no function {name}") from None
        function.restype = restype
        function.argtypes = argtypes


def library() -> ctypes.CDLL:
    """Return the loaded library, loading and checking it on the first call."""
    global _library
    with _lock:
        if _library is None:
            loaded = _open_library()
            try:
                abi = loaded.act_abi_version
                abi.restype = ctypes.c_int
                abi.argtypes = []
                found = abi()
            except AttributeError:
                raise LibraryError(
                    f"{loaded._name} is not the activation library: the function act_abi_version is missing"
                ) from None
            if found != ABI_VERSION:
                raise LibraryError(
                    f"the activation library at {loaded._name} has C ABI version {found}, but this Python "
                    f"package needs version {ABI_VERSION}; install matching versions of both"
                )
            _bind(loaded)
            _library = loaded
        return _library


def check(rc: int) -> None:
    """Raise the exception of a failed call's code, with the library's message for this thread."""
    if rc >= 0:
        return
    lib = library()
    message = (lib.act_last_error_message() or b"").decode("utf-8", "replace")
    raise error_from_code(rc, message)


def take_string(address: ctypes.c_void_p) -> str:
    """Copy a string the library returned, then release it with act_free."""
    if not address.value:
        return ""
    try:
        return ctypes.string_at(address.value).decode("utf-8", "replace")
    finally:
        library().act_free(address)


def call_for_string(function: Any, *args: Any) -> str:
    """Call a function whose first argument is a char** output, and return that string."""
    out = ctypes.c_void_p()
    check(function(ctypes.byref(out), *args))
    return take_string(out)


def encode(text: Optional[str]) -> Optional[bytes]:
    """Encode an optional text argument as UTF-8; None stays None (a NULL pointer)."""
    if text is None:
        return None
    return text.encode("utf-8")
