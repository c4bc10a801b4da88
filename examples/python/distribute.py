#!/usr/bin/env python3
"""Distribute an audience through the Python binding and show the progress of each destination.

    distribute.py CONFIG AUDIENCE DESTINATION...

CONFIG is an activation.json (docs/configuration.md). The script queues the distribution, runs it
with a worker pool of this process, and prints a line each time a destination passes another
tenth of its source. Exit status: 0 when the job completed, 1 otherwise.
"""

import logging
import sys
import threading
from typing import Dict

import activation


def main(argv: list) -> int:
    if len(argv) < 4:
        print(f"usage: {argv[0]} CONFIG AUDIENCE DESTINATION...", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config, audience, destinations = argv[1], argv[2], argv[3:]

    # Progress arrives on library threads, possibly for several destinations at once.
    lock = threading.Lock()
    last_tenth: Dict[str, int] = {}

    def show(progress: activation.Progress) -> None:
        percent = progress.percent or 0.0
        tenth = int(percent // 10)
        with lock:
            if last_tenth.get(progress.destination) == tenth and progress.state == "running":
                return
            last_tenth[progress.destination] = tenth
            print(
                f"{progress.destination:<16} {percent:5.1f}%  {progress.rows_read:8} rows read  "
                f"{progress.accepted:8} accepted  {progress.invalid:6} invalid  {progress.state}",
                flush=True,
            )

    try:
        with activation.Engine(config) as engine:
            job = engine.distribute(audience, destinations)
            status = job.wait(on_progress=show)
            info = job.info()
    except activation.Error as error:
        print(f"distribute.py: {error} ({error.name})", file=sys.stderr)
        return 1
    print(f"job {job.id}: {status.value}")
    if info["last_error"]:
        print(f"last error: {info['last_error']}")
    return 0 if status is activation.JobStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
