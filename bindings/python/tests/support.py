"""Scratch folders with a small audience and a configuration with a file destination."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest
from typing import Any, Dict

VALID_ROWS = 30
INVALID_ROWS = 3


def write_audience(folder: str, valid: int = VALID_ROWS, invalid: int = INVALID_ROWS) -> str:
    """Write a CSV audience whose rows are either usable (an email) or invalid (no identifier left)."""
    path = os.path.join(folder, "audience.csv")
    with open(path, "w", encoding="utf-8") as out:
        out.write("CUSTOMERID,EMAIL,COUNTRY\n")
        for i in range(1, valid + 1):
            out.write(f"c{i},Person{i}@Example.org,US\n")
        for i in range(invalid):
            out.write(f",not-an-email-{i},US\n")
    return path


def config(folder: str) -> Dict[str, Any]:
    """A configuration whose relative paths resolve against `folder`."""
    return {
        "store": "store/activation.db",
        "engine": {"workers": 1, "batch_size": 10, "lease_seconds": 10, "heartbeat_seconds": 2},
        "audiences": {
            "customers": {
                "source": {"type": "csv", "path": "audience.csv"},
                "mapping": {"EMAIL": "email", "COUNTRY": "country"},
            }
        },
        "destinations": {
            "files": {
                "type": "file",
                "profile": "meta",
                "settings": {"directory": "out", "format": "hashed_csv", "fsync": False},
            }
        },
    }


class ScratchTestCase(unittest.TestCase):
    """Gives each test a scratch folder holding audience.csv and activation.json."""

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="act-py-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        write_audience(self.folder)
        self.config = config(self.folder)
        self.config_path = os.path.join(self.folder, "activation.json")
        with open(self.config_path, "w", encoding="utf-8") as out:
            json.dump(self.config, out)
