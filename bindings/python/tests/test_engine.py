"""Engine, Job and WorkerPool: distributions to the file destination through a real SQLite store."""

from __future__ import annotations

import csv
import glob
import json
import logging
import os
import threading
import unittest
from typing import List

import activation
from support import INVALID_ROWS, VALID_ROWS, ScratchTestCase


class DistributionTest(ScratchTestCase):
    def test_distribute_and_wait_with_progress(self) -> None:
        updates: List[activation.Progress] = []
        events: List[activation.Event] = []
        with self.assertLogs("activation", level="INFO") as logs:
            with activation.Engine(self.config_path) as engine:
                with engine.on_event(events.append, prefix="distribution."):
                    job = engine.distribute("customers", ["files"], metadata={"campaign": "spring"})
                    self.assertEqual(job.status(), activation.JobStatus.QUEUED)
                    status = job.wait(on_progress=updates.append, timeout=60)

                self.assertEqual(status, activation.JobStatus.COMPLETED)
                self.assertTrue(status.finished)
                info = job.info()
                self.assertEqual(info["status"], "completed")
                self.assertEqual(info["metadata"], {"campaign": "spring"})
                counters = info["progress"]["files"]["counters"]
                self.assertEqual(counters["outcomes"]["accepted"], VALID_ROWS)
                self.assertEqual(counters["outcomes"]["invalid"], INVALID_ROWS)

        self.assertTrue(any(record.name == "activation.engine" for record in logs.records))
        self.assertTrue(updates)
        last = updates[-1]
        self.assertEqual((last.job_id, last.destination, last.state), (job.id, "files", "done"))
        self.assertEqual((last.accepted, last.invalid, last.rows_read), (VALID_ROWS, INVALID_ROWS, VALID_ROWS + INVALID_ROWS))
        self.assertEqual(last.percent, 100.0)
        self.assertIn("counters", last.details)
        self.assertIn("distribution.completed", [event.type for event in events])

        # The files hold one row per accepted member, with the digest activation.hash() gives.
        rows = []
        for path in sorted(glob.glob(os.path.join(self.folder, "out", f"job-{job.id}", "batch-*-add.csv"))):
            with open(path, newline="", encoding="utf-8") as file:
                rows.extend(list(csv.DictReader(file)))
        self.assertEqual(len(rows), VALID_ROWS)
        expected = activation.hash("meta", "email", "Person7@Example.org").sha256
        self.assertIn(expected, [row["email"] for row in rows])

    def test_listings_metrics_and_outcomes(self) -> None:
        with activation.Engine(self.config, base_dir=self.folder) as engine:
            job = engine.distribute("customers", "files", priority="high")
            stats = engine.run_until_idle(timeout=60)
            self.assertEqual(stats["completed"], 1)
            self.assertEqual([entry["id"] for entry in engine.jobs()], [job.id])
            self.assertEqual(engine.history("customers")[0]["priority"], "high")
            self.assertEqual(engine.history("nobody"), [])
            self.assertEqual(engine.dead_letters(), [])
            self.assertEqual(engine.queue_metrics()["completed"], 1)
            self.assertIn('activation_queue_jobs{state="completed"} 1', engine.metrics_text())
            engine.check_alerts()

            outcomes = os.path.join(self.folder, "outcomes.csv")
            job.export_outcomes(outcomes)
            with open(outcomes, newline="", encoding="utf-8") as file:
                rows = list(csv.DictReader(file))
            self.assertEqual(len(rows), INVALID_ROWS)
            self.assertTrue(all(row["outcome"] == "invalid" and row["reason_code"] for row in rows))

            same = engine.job(job.id)
            self.assertEqual(same.status(), activation.JobStatus.COMPLETED)

    def test_config_as_json_text(self) -> None:
        with activation.Engine(json.dumps(self.config), base_dir=self.folder, workers=1) as engine:
            self.assertEqual(engine.jobs(), [])

    def test_cancel_and_retry(self) -> None:
        with activation.Engine(self.config_path) as engine:
            job = engine.distribute("customers", ["files"], delay=3600)
            self.assertEqual(job.status(), activation.JobStatus.SCHEDULED)
            with self.assertRaises(activation.DeadlineExceededError) as caught:
                job.wait(timeout=0.2, run_workers=False)
            self.assertIn("did not finish within 0.2 seconds", str(caught.exception))
            self.assertTrue(job.cancel())
            self.assertEqual(job.status(), activation.JobStatus.CANCELLED)
            with self.assertRaises(activation.FailedPreconditionError):
                job.cancel()

            job.retry()
            with engine.start_workers():
                self.assertEqual(job.wait(timeout=60), activation.JobStatus.COMPLETED)
            with self.assertRaises(activation.FailedPreconditionError):
                job.retry()

    def test_retry_requeues_failed_destinations(self) -> None:
        self.config["destinations"]["broken"] = {
            "type": "file",
            "profile": "meta",
            "settings": {"directory": "broken", "format": "hashed_csv", "fsync": False},
        }
        with activation.Engine(self.config, base_dir=self.folder) as engine:
            job = engine.distribute("customers", ["files", "broken"])
            # The folder becomes a file after the job was queued, so that destination's run fails.
            broken = os.path.join(self.folder, "broken")
            os.rmdir(broken)
            with open(broken, "w", encoding="utf-8") as out:
                out.write("not a folder")
            self.assertEqual(job.wait(timeout=60), activation.JobStatus.COMPLETED_WITH_ERRORS)

            # Once the cause is fixed, the retry is a new job of the failed destination alone.
            os.remove(broken)
            retried = job.retry()
            self.assertNotEqual(retried.id, job.id)
            info = retried.info()
            self.assertEqual(info["destinations"], ["broken"])
            self.assertEqual(info["metadata"]["retry_of"], str(job.id))
            self.assertEqual(retried.wait(timeout=60), activation.JobStatus.COMPLETED)
            with self.assertRaises(activation.FailedPreconditionError):
                retried.retry()

    def test_worker_pool_runs_once_per_engine(self) -> None:
        with activation.Engine(self.config_path) as engine:
            with engine.start_workers(threads=1):
                with self.assertRaises(activation.FailedPreconditionError) as caught:
                    engine.start_workers()
                self.assertIn("run already", str(caught.exception))


class BadInputTest(ScratchTestCase):
    def test_configuration_errors(self) -> None:
        with self.assertRaises(activation.NotFoundError) as caught:
            activation.Engine(os.path.join(self.folder, "missing.json"))
        self.assertIn("missing.json", str(caught.exception))
        with self.assertRaises(activation.InvalidArgumentError):
            activation.Engine('{"store": ')
        broken = dict(self.config, stor="x")
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            activation.Engine(broken, base_dir=self.folder)
        self.assertIn("stor", str(caught.exception))
        with self.assertRaises(activation.InvalidArgumentError):
            activation.Engine(42)  # type: ignore[arg-type]
        with self.assertRaises(activation.InvalidArgumentError):
            activation.Engine(self.config_path, workers=0)

    def test_request_errors(self) -> None:
        with activation.Engine(self.config_path) as engine:
            with self.assertRaises(activation.NotFoundError) as caught:
                engine.distribute("customers", ["nowhere"])
            self.assertIn("destination 'nowhere' is not configured (destinations: files)", str(caught.exception))
            with self.assertRaises(activation.NotFoundError):
                engine.distribute("prospects", ["files"])
            with self.assertRaises(activation.InvalidArgumentError) as caught:
                engine.distribute("customers", ["files"], mode="merge")
            self.assertIn('request.mode: expected add, remove, replace or mirror, got "merge"', str(caught.exception))
            with self.assertRaises(activation.InvalidArgumentError):
                engine.distribute("customers", [])
            with self.assertRaises(activation.InvalidArgumentError) as caught:
                engine.distribute(None, ["files"])  # type: ignore[arg-type]
            self.assertIn("request.audience: expected an audience name, got null", str(caught.exception))
            with self.assertRaises(activation.InvalidArgumentError):
                engine.distribute("customers", ["files"], delay="soon")  # type: ignore[arg-type]
            with self.assertRaises(activation.NotFoundError):
                engine.job(999999)
            with self.assertRaises(activation.InvalidArgumentError):
                engine.jobs(limit=0)

    def test_use_after_close(self) -> None:
        engine = activation.Engine(self.config_path)
        job = engine.distribute("customers", ["files"])
        closed_job = engine.job(job.id)
        closed_job.close()
        engine.close()
        engine.close()
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            engine.jobs()
        self.assertIn("closed", str(caught.exception))
        with self.assertRaises(activation.FailedPreconditionError) as caught:
            job.status()
        self.assertIn("engine of this handle was destroyed", str(caught.exception))
        with self.assertRaises(activation.InvalidArgumentError):
            closed_job.status()


class CallbackTest(ScratchTestCase):
    def test_raising_progress_callback(self) -> None:
        def explode(progress: activation.Progress) -> None:
            raise ValueError("display broke")

        with activation.Engine(self.config_path) as engine:
            job = engine.distribute("customers", ["files"])
            with self.assertRaises(activation.CallbackError) as caught:
                job.wait(on_progress=explode, timeout=60)
            self.assertIsInstance(caught.exception.__cause__, ValueError)
            self.assertIn("on_progress raised ValueError: display broke", str(caught.exception))
            # The job is intact: it finishes when workers run it.
            engine.run_until_idle(timeout=60)
            self.assertEqual(job.status(), activation.JobStatus.COMPLETED)

    def test_raising_event_callback_is_logged(self) -> None:
        def explode(event: activation.Event) -> None:
            raise RuntimeError("handler broke")

        with activation.Engine(self.config_path) as engine:
            with self.assertLogs("activation", level="ERROR") as logs:
                with engine.on_event(explode):
                    job = engine.distribute("customers", ["files"])
                    self.assertEqual(job.wait(timeout=60), activation.JobStatus.COMPLETED)
            self.assertTrue(any("an event callback raised" in line for line in logs.output))

    def test_callbacks_may_call_back_but_not_close(self) -> None:
        seen = {}
        done = threading.Event()

        with activation.Engine(self.config_path) as engine:

            def on_started(event: activation.Event) -> None:
                if event.type != "distribution.started":
                    return
                seen["status"] = engine.job(event.job_id).status()
                try:
                    engine.close()
                except activation.Error as error:
                    seen["close_error"] = error
                done.set()

            with engine.on_event(on_started):
                job = engine.distribute("customers", ["files"])
                self.assertEqual(job.wait(timeout=60), activation.JobStatus.COMPLETED)
            self.assertTrue(done.wait(10))
            self.assertEqual(seen["status"], activation.JobStatus.RUNNING)
            self.assertIsInstance(seen["close_error"], activation.FailedPreconditionError)
            self.assertIn("inside a callback", str(seen["close_error"]))
            # The refused close left the engine open.
            self.assertEqual(engine.queue_metrics()["completed"], 1)

    def test_subscription_ends_on_close(self) -> None:
        calls = []
        with activation.Engine(self.config_path) as engine:
            subscription = engine.on_progress(calls.append)
            subscription.close()
            subscription.close()
            engine.distribute("customers", ["files"]).wait(timeout=60)
        self.assertEqual(calls, [])

    def test_log_level_filters_in_the_library(self) -> None:
        logger = logging.getLogger("activation")
        with self.assertLogs("activation", level="DEBUG") as logs:
            with activation.Engine(self.config_path, log_level=logging.ERROR) as engine:
                engine.distribute("customers", ["files"]).wait(timeout=60)
            logger.error("marker")  # assertLogs needs one record; the engine's were all below ERROR.
        self.assertEqual([record.name for record in logs.records], ["activation"])


if __name__ == "__main__":
    unittest.main()
