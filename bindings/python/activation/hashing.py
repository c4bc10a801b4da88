"""One value through a platform's normalizer: what a distribution would send for it."""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from . import _native


@dataclass(frozen=True)
class Reason:
    """Why a value was dropped, or a warning about a kept one: a stable code and a message."""

    code: str
    message: str


@dataclass(frozen=True)
class HashResult:
    """The outcome of normalizing one value for one platform."""

    field: str
    input: str
    normalized: Optional[str]  # None when the value cannot be used.
    sha256: Optional[str]  # None when the platform takes the value unhashed, or it cannot be used.
    error: Optional[Reason]
    warnings: List[Reason]

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def wire_value(self) -> Optional[str]:
        """The text the platform receives: the digest for hashed fields, else the normalized value."""
        return self.sha256 if self.sha256 is not None else self.normalized


def _reason(value: Optional[Dict[str, Any]]) -> Optional[Reason]:
    return None if value is None else Reason(code=value["code"], message=value["message"])


def hash(  # noqa: A001 - the name the package documents, as in `activate hash`
    platform: str,
    field: str,
    value: Union[str, bytes],
    *,
    country: Optional[str] = None,
    default_region: Optional[str] = None,
    google_canonicalize_gmail: Optional[bool] = None,
) -> HashResult:
    """Normalize ``value`` as ``field`` by ``platform``'s rules, and hash it where the platform wants.

    ``platform`` is meta, google, linkedin, tiktok or snapchat; ``field`` is email, phone,
    first_name, last_name, first_initial, city, state, zip, country, dob, gender, maid or
    external_id. ``country`` is the row's country, used to read phone numbers; ``default_region``
    (ISO 3166-1 alpha-2, default US) applies when it is missing. A value that cannot be used comes
    back with ``error`` set; an unknown platform or field raises InvalidArgumentError.
    """
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    options: Dict[str, Any] = {}
    if country is not None:
        options["country"] = country
    if default_region is not None:
        options["default_region"] = default_region
    if google_canonicalize_gmail is not None:
        options["google_canonicalize_gmail"] = google_canonicalize_gmail
    text = _native.call_for_string(
        _native.library().act_hash,
        _native.encode(platform),
        _native.encode(field),
        ctypes.c_char_p(data),
        len(data),
        json.dumps(options).encode("utf-8") if options else None,
    )
    result = json.loads(text)
    return HashResult(
        field=result["field"],
        input=result["input"],
        normalized=result["normalized"],
        sha256=result["sha256"],
        error=_reason(result["error"]),
        warnings=[Reason(code=w["code"], message=w["message"]) for w in result["warnings"]],
    )
