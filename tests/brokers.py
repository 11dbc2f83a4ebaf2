"""Brokers for the worker tests: the local Redis, and the local RabbitMQ with a vhost
of its own; a Celery app on either for the test's own process, and real worker
processes that a test can kill."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.redis import REDIS, redis_answers

BASE_DIR = Path(__file__).resolve().parent.parent
REDIS_URL = f"redis://{REDIS[0]}:{REDIS[1]}/15"
RABBITMQ = ("127.0.0.1", 5672)
# Celery prefers these variables to its configuration (CI exports the first).
CELERY_ENVIRONMENT = (
    "CELERY_BROKER_URL",
    "CELERY_BROKER_READ_URL",
    "CELERY_BROKER_WRITE_URL",
)


def rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(RABBITMQ, timeout=0.5):
            return True
    except OSError:
        return False


def redis_url_or_skip() -> str:
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    return REDIS_URL


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """The URL of a vhost of its own on the local RabbitMQ, for the guest user, made
    with rabbitmqctl and deleted afterwards. Skips without RabbitMQ or rabbitmqctl."""
    if not rabbitmq_answers():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("no rabbitmqctl to make a vhost with (RabbitMQ's server tools)")
    vhost = f"amanah-test-{uuid.uuid4().hex[:8]}"

    def rabbitmqctl(*args: str) -> None:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [ctl, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode:
            pytest.skip(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:200]}")

    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"
    finally:
        subprocess.run(  # noqa: S603 - fixed arguments
            [ctl, "delete_vhost", vhost], capture_output=True, timeout=60, check=False
        )


def redelivery_conf(broker_url: str, queue: str, *, visibility: int) -> dict:
    """Configuration for a test in which a killed worker's message must reach another
    worker soon: on Redis a short visibility timeout, looked at every second, and keys
    of the test's own (so the short timeout never hands on another test's messages);
    RabbitMQ hands it on when the connection drops."""
    if not broker_url.startswith("redis"):
        return {}
    return {
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
            "global_keyprefix": f"{queue}:",
        }
    }


@contextmanager
def celery_app(
    broker_url: str, queue: str, settings, monkeypatch, **conf: Any
) -> Iterator[Any]:
    """A Celery app of the test's own on `broker_url`, made current so the code's
    `.delay()` calls go through it (the shared app caches routes from earlier, eager
    tests), sending to `queue`."""
    from celery import Celery

    from config.celery import app as project_app

    for name in CELERY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    if broker_url.startswith("amqp"):
        # With heartbeats an in-thread worker on RabbitMQ takes over 10 s to stop.
        conf.setdefault("broker_heartbeat", 0)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app = Celery("amanah-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url=broker_url,
        task_always_eager=False,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        **conf,
    )
    app.set_current()
    try:
        yield app
    finally:
        # Celery's test worker makes its app the default too: threads started later
        # (a live server's) would look tasks up in this app, where none is registered.
        project_app.set_current()
        project_app.set_default()
        app.close()
        if broker_url.startswith("redis"):
            _redis_forget(broker_url, queue)


@contextmanager
def thread_worker(broker_url: str, queue: str, settings, monkeypatch) -> Iterator[Any]:
    """A real worker (two threads) in this process, consuming `queue` of an app of
    the test's own (`celery_app`)."""
    from celery.contrib.testing.worker import start_worker

    with (
        celery_app(broker_url, queue, settings, monkeypatch) as app,
        start_worker(
            app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=[queue],
            loglevel="WARNING",
        ),
    ):
        yield app


def _redis_forget(broker_url: str, queue: str) -> None:
    """Delete the test queue's keys: the queue, its bindings, what the workers left."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
    except redis.ConnectionError:
        pass  # a broker that was never there left nothing
    finally:
        client.close()


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


class WorkerProcess:
    """`celery worker` in a process of its own, on the test's database and broker.
    With the solo pool a task runs in that process, so killing it kills the task; with
    prefork (`make worker`'s) in a pool process of it (`pool_processes`)."""

    def __init__(
        self, name: str, broker_url: str, queue: str, conf: dict, log: Path, pool: str
    ):
        self.name, self.log = name, log
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": broker_url,
            "AMANAH_TEST_CELERY": json.dumps({"task_default_queue": queue, **conf}),
        }
        for name_ in CELERY_ENVIRONMENT[1:]:
            env.pop(name_, None)
        with log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                [
                    *(sys.executable, "-m", "celery", "-A", "tests.broker_worker"),
                    *("worker", f"--pool={pool}", "--concurrency=1", "-Q", queue),
                    "--loglevel=INFO",
                    *("-n", f"{name}@%h", "--without-mingle", "--without-gossip"),
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"worker {self.name} did not start:\n{self.output()}"
                )
            time.sleep(0.1)

    def received(self, task: str) -> list[str]:
        """The ids of the `task` messages this worker received, in order."""
        return re.findall(
            rf"Task {re.escape(task)}\[([0-9a-f-]+)\] received", self.output()
        )

    def pool_processes(self) -> list[int]:
        """The process ids of the worker's pool (prefork), from Linux's /proc."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if not children.exists():
            pytest.skip("no /proc/<pid>/task/<pid>/children to find pool processes in")
        return [int(child) for child in children.read_text().split()]

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, nothing handed back to the broker."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def worker_processes(broker_url: str, queue: str, conf: dict, logs: Path):
    """Start workers with `start(name)`; every one still running is stopped after."""
    started: list[WorkerProcess] = []

    def start(name: str, pool: str = "solo") -> WorkerProcess:
        log = logs / f"{name}.log"
        worker = WorkerProcess(name, broker_url, queue, conf, log, pool)
        started.append(worker)
        worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
