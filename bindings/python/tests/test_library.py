"""Loading the library, its versions, and the mapping of error codes to exceptions."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import textwrap
import unittest

import activation
from activation import _native, errors

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code: str, library: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ACTIVATION_LIBRARY=library, PYTHONPATH=PACKAGE_ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


class LibraryTest(unittest.TestCase):
    def test_versions_match(self) -> None:
        self.assertEqual(activation.library_version(), activation.__version__)
        self.assertEqual(_native.library().act_abi_version(), activation.ABI_VERSION)
        major, minor, patch = (int(part) for part in activation.__version__.split("."))
        self.assertEqual(_native.library().act_version_number(), major * 1000000 + minor * 1000 + patch)

    def test_missing_library_is_reported(self) -> None:
        result = run_python(
            """
            import activation
            try:
                activation.hash("meta", "email", "a@b.com")
            except activation.LibraryError as error:
                print(error)
            """,
            "/nonexistent/libactivation.so",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("$ACTIVATION_LIBRARY=/nonexistent/libactivation.so", result.stdout)

    def test_other_library_is_refused(self) -> None:
        libc = ctypes.util.find_library("c")
        if libc is None:
            self.skipTest("no C library found to load in place of activation")
        result = run_python(
            """
            import activation
            try:
                activation.hash("meta", "email", "a@b.com")
            except activation.LibraryError as error:
                print(error)
            """,
            libc,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("is not the activation library: the function act_abi_version is missing", result.stdout)


class ErrorMappingTest(unittest.TestCase):
    def test_each_code_has_its_exception(self) -> None:
        lib = _native.library()
        for code in range(-1, -15, -1):
            error = errors.error_from_code(code, "message")
            self.assertEqual(error.code, code)
            self.assertEqual(error.name, lib.act_error_name(code).decode())
            self.assertEqual(str(error), "message")

    def test_exceptions_join_the_builtin_families(self) -> None:
        self.assertIsInstance(errors.error_from_code(-1, ""), ValueError)
        self.assertIsInstance(errors.error_from_code(-2, ""), LookupError)
        self.assertIsInstance(errors.error_from_code(-8, ""), TimeoutError)
        self.assertIsInstance(errors.error_from_code(-9, ""), PermissionError)

    def test_unknown_code_keeps_its_value(self) -> None:
        error = errors.error_from_code(-99, "boom")
        self.assertIs(type(error), activation.Error)
        self.assertEqual(error.code, -99)
        self.assertIn("unknown error code -99", str(error))


if __name__ == "__main__":
    unittest.main()
