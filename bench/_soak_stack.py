"""The processes of bench/soak.py: the Procfile's commands, a Redis of the soak's own
and, with `AMANAH_SOAK_BROKER=rabbitmq`, a RabbitMQ virtual host of its own.

honcho (what `make serve` uses) does not restart a process that dies, and the soak
kills some on purpose, so it starts the Procfile's commands itself: each line through
`sh -c`, as honcho does, in a process group of its own, its output in a log file.
Everything started here is stopped here (its own process group only), and dies with
the soak should the soak itself be killed.
"""

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
PR_SET_PDEATHSIG = 1


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """Process name -> command, parsed as honcho parses it."""
    from honcho.environ import parse_procfile

    return dict(parse_procfile(path.read_text()).processes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the soak goes (Linux; else nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the ")".
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def _cpu_fields(pid: int) -> list[int]:
    """utime, stime, cutime, cstime of `pid`, in clock ticks (zeros once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return [0, 0, 0, 0]
    return [int(v) for v in stat.rpartition(")")[2].split()[11:15]]


def cpu_seconds(master: int) -> float:
    """CPU time of `master`, its live children and the children it reaped (a killed
    gunicorn worker's time stays in its master's)."""
    ticks = sum(_cpu_fields(master))
    ticks += sum(sum(_cpu_fields(child)[:2]) for child in children_of(master))
    return ticks / os.sysconf("SC_CLK_TCK")


class BackendCpu(threading.Thread):
    """CPU seconds of the PostgreSQL server processes serving one database, from when
    `start()` is called until `stop()`. Backends come and go (connections live
    DATABASE_CONN_MAX_AGE seconds): each is read once a second, so at most the last
    second of one that ends is missed."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True)
        self.needle = f" {database} ".encode()
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.done = threading.Event()

    def _read(self) -> dict[int, int]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if self.needle not in (entry / "cmdline").read_bytes():
                    continue
            except OSError:
                continue
            found[int(entry.name)] = sum(_cpu_fields(int(entry.name))[:2])
        return found

    def run(self) -> None:
        self.first = self._read()  # already running: counted from now on
        while not self.done.wait(1.0):
            for pid, ticks in self._read().items():
                self.first.setdefault(pid, 0)  # started since: all of it
                self.last[pid] = ticks

    def stop(self) -> float:
        self.done.set()
        self.join(timeout=10)
        ticks = sum(t - self.first.get(pid, 0) for pid, t in self.last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


class Process:
    """One command, in a process group of its own, its output appended to `log`."""

    def __init__(self, name: str, argv: list[str], *, env: dict, log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, log
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> "Process":
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - the Procfile's own commands
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill_hard(self) -> None:
        """kill -9 of the process itself (a crash), then of anything left in its group
        (pool children a dead master leaves behind, as a supervisor's cgroup would)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to its group (a graceful stop, as honcho's Ctrl-C), then SIGKILL."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)


class Stack:
    """The Procfile's processes on the soak's settings; restartable one by one."""

    def __init__(self, *, env: dict, logs: Path) -> None:
        self.commands = procfile_commands()
        missing = {"web", "worker", "beat"} - set(self.commands)
        if missing:
            raise SystemExit(f"Procfile: no {', '.join(sorted(missing))} process")
        self.env, self.logs = env, logs
        self.processes: dict[str, Process] = {}

    def start(self, name: str) -> Process:
        # `exec`: the process honcho would run, without a shell in between.
        process = Process(
            name,
            ["/bin/sh", "-c", "exec " + self.commands[name]],
            env=self.env,
            log=self.logs / f"{name}.log",
        )
        self.processes[name] = process.start()
        return process

    def restart(self, name: str) -> Process:
        self.processes[name].stop(timeout=5)
        return self.start(name)

    def stop_all(self) -> None:
        # The web first: no new work while the workers finish theirs.
        for name in ("web", "beat", "worker"):
            if name in self.processes:
                self.processes[name].stop()

    def dead(self) -> list[str]:
        return [name for name, p in self.processes.items() if not p.alive()]


def wait_for(check, *, seconds: float, what: str, interval: float = 0.3) -> float:
    """Poll `check()` until true; seconds it took. TimeoutError naming `what` if not."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(interval)
    raise TimeoutError(f"{what} within {seconds:.0f} s")


def log_has(path: Path, text: str, *, after: int = 0) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(after)
            return text.encode() in f.read()
    except OSError:
        return False


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Redis:
    """A redis-server of the soak's own on a spare port: no snapshots, no append-only
    file, so a restart loses what it held, as a crash of a cache-only Redis would."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.logs = logs
        self.process: Process | None = None
        self.restarts = 0

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "Redis":
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.logs),
        ]
        self.process = Process(
            "redis", argv, env=dict(os.environ), log=self.logs / "redis.log"
        ).start()
        wait_for(self.ping, seconds=15, what="redis-server did not answer")
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def crash_and_restart(self, down_seconds: float = 2.0) -> None:
        """kill -9, stay down a moment, start again on the same port (empty)."""
        assert self.process is not None
        self.process.kill_hard()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=5)

    def client(self, db: int):
        import redis

        return redis.Redis.from_url(self.url(db), socket_connect_timeout=2)


@contextlib.contextmanager
def rabbitmq_vhost(name: str) -> Iterator[str]:
    """A RabbitMQ virtual host of the soak's own for guest; deleted however the run
    ends. Yields the broker URL."""

    def ctl(*args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["rabbitmqctl", "-q", *args],  # noqa: S607 - rabbitmqctl from PATH
            check=True,
            capture_output=True,
            timeout=60,
        )

    try:
        ctl("add_vhost", name)
        ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"rabbitmqctl could not add vhost {name}: {exc}") from exc
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            ctl("delete_vhost", name)


def rabbitmq_backlog(vhost: str) -> int:
    """Messages ready or unacknowledged in every queue of the vhost."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [  # noqa: S607 - rabbitmqctl from PATH
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost,
            "--no-table-headers",
            "messages",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return -1
    return sum(int(n) for n in done.stdout.split() if n.isdigit())
