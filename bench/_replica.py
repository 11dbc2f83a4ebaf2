"""A streaming replica of the local PostgreSQL cluster, for benchmarks that read from
one (`DATABASE_REPLICA_URL`, apps/core/replica.py). Running this file directly does
nothing; `bench/_replica_check.py` shows it working.

    with streaming_replica() as url:          # postgres://postgres@127.0.0.1:5442
        replica_caught_up(url)                # everything the primary wrote, replayed
        with replay_paused(url):              # replay stops; the lag grows with writes
            ...

`streaming_replica` copies the whole cluster (`pg_basebackup -R`: every database in
it, so it needs as much free disk as the cluster holds) into a temporary directory,
starts it on a spare port as a hot standby streaming from the primary through a
replication slot of its own, waits until it accepts connections and streams, and
at the end, however the block ends (an exception, Ctrl-C, SIGTERM), stops it, drops
the slot (a forgotten slot would keep the primary's WAL forever) and removes the
directory. The primary is not reconfigured or restarted: its pg_hba.conf must
already let the OS user's PostgreSQL role connect for replication from 127.0.0.1
(`replication_allowed` says; the error names the line to add).

PostgreSQL refuses to run as root: when this runs as root, the copy and the server
run as the OS user who owns the primary's data directory (`runuser`).
"""

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

PRIMARY_URL = os.environ.get("BENCH_PRIMARY_URL", "postgres://postgres@127.0.0.1:5432")
REPLICA_PORT = int(os.environ.get("BENCH_REPLICA_PORT", "5442"))
SLOT_PREFIX = "amanah_bench_replica_"
# Settings a hot standby must have at least as high as its primary's.
_AT_LEAST_PRIMARY = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, connect_timeout=5, **kwargs)


def _server_root(url: str) -> int:
    """The pid of the postmaster of the PostgreSQL server `url` reaches (the parent
    of a backend of ours)."""
    with _connect(url) as conn:
        return _parent(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def _tree(root: int) -> list[int]:
    """`root` and every process under it, as /proc shows them now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, ValueError):
                children.setdefault(_parent(int(entry.name)), []).append(
                    int(entry.name)
                )
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _parent(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ...", comm may hold spaces.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pin(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):  # a backend that has just ended
            os.sched_setaffinity(pid, cpus)


def _pin_server(root: int, cpus: set[int]) -> None:
    """A server's postmaster first, so that what it forks from then on has `cpus`,
    then every process under it (those forked before, found after)."""
    _pin([root], cpus)
    _pin(_tree(root), cpus)


@contextmanager
def cores_split(primary_url: str, replica_url: str) -> Iterator[set[int]]:
    """Separate machines, as near as one can get on one: the primary's server (and
    the backends it forks later) and this process (its writing threads) on the
    lower half of this process's cores (the smaller half when their number is odd),
    the standby's server on the rest; yields the standby's cores, for the reading
    process to be pinned to. On leaving, however it leaves, this process gets its
    cores back and each server's processes the cores its postmaster had before
    (the primary is the machine's own cluster). One split run at a time: a second
    one's end would give the primary its cores back under the first. A run killed
    before that leaves the primary's processes on half the cores until they are
    given them back (as root, `taskset -a -p -c <the cores it had> <pid>` for each
    postgres process, or a restart of the cluster), and its standby running."""
    every = os.sched_getaffinity(0)
    ordered = sorted(every)
    if len(ordered) < 2:
        raise RuntimeError("cores_split needs two cores at least")
    primary_cores = set(ordered[: len(ordered) // 2])
    replica_cores = every - primary_cores
    servers = [
        (root, os.sched_getaffinity(root), cores)
        for root, cores in (
            (_server_root(primary_url), primary_cores),
            (_server_root(replica_url), replica_cores),
        )
    ]
    try:
        os.sched_setaffinity(0, primary_cores)
        for root, _, cores in servers:
            _pin_server(root, cores)
        yield replica_cores
    finally:
        os.sched_setaffinity(0, every)
        for root, before, _ in servers:
            _pin_server(root, before)


def _pg_bin(primary_url: str) -> Path:
    with _connect(primary_url) as conn:
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    found = Path(f"/usr/lib/postgresql/{major}/bin")
    return (
        found
        if (found / "pg_ctl").exists()
        else Path(shutil.which("pg_ctl") or "").parent
    )


def _owner_prefix(primary_url: str) -> tuple[list[str], str]:
    """The command prefix that runs as the owner of the primary's data directory
    (empty unless root), and that user's name."""
    with _connect(primary_url) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    owner = pwd.getpwuid(os.stat(data_dir).st_uid).pw_name
    if os.geteuid() == 0 and owner != "root":
        return ["runuser", "-u", owner, "--"], owner
    return [], pwd.getpwuid(os.geteuid()).pw_name


def replication_allowed(primary_url: str = PRIMARY_URL) -> bool:
    """Whether the primary accepts a replication connection from this URL's role."""
    try:
        with _connect(primary_url, replication="true"):
            return True
    except psycopg.OperationalError:
        return False


def replication_allow_local(primary_url: str = PRIMARY_URL) -> bool:
    """Let the URL's role replicate from 127.0.0.1 (`trust`, as the cluster's other
    local lines): one line appended to the primary's pg_hba.conf and a reload (no
    restart; sessions go on). Does nothing when already allowed. Returns whether it
    changed the file. A change to the developer's cluster: call it only on a machine
    kept for benchmarks, and say so."""
    if replication_allowed(primary_url):
        return False
    user = conninfo_to_dict(primary_url).get("user", "postgres")
    with _connect(primary_url) as conn:
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        with hba.open("a") as lines:
            lines.write(
                "# bench/_replica.py: streaming replicas for the benchmarks\n"
                f"host replication {user} 127.0.0.1/32 trust\n"
            )
        conn.execute("SELECT pg_reload_conf()")
    for _ in range(50):
        if replication_allowed(primary_url):
            return True
        time.sleep(0.1)
    raise RuntimeError(f"Still no replication connection after editing {hba}.")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _run(cmd: list[str], *, timeout: float) -> None:
    """Run `cmd` in a process group of its own, killed whole if this is interrupted
    (`runuser`'s child would otherwise live on, holding the output pipes open)."""
    proc = subprocess.Popen(  # noqa: S603  # nosec B603
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)


@contextmanager
def _port_claimed(port: int | None) -> Iterator[int]:
    """`port`, or the first port from REPLICA_PORT up that is free and that no other
    run on this machine has claimed (a lock file held for the replica's life)."""
    candidates = [port] if port else range(REPLICA_PORT, REPLICA_PORT + 20)
    for candidate in candidates:
        lock = (Path(tempfile.gettempdir()) / f"amanah-replica-{candidate}.lock").open(
            "w"
        )
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        if not _port_free(candidate):
            lock.close()
            continue
        try:
            yield candidate
        finally:
            lock.close()
        return
    raise RuntimeError(
        f"Port {port} is taken." if port else "No free port for a replica."
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _slots_forget(primary_url: str, name: str | None = None) -> None:
    """Drop this replica's slot (`name`), or the slots of runs whose process is gone
    (killed with SIGKILL: nothing could drop them then)."""
    with _connect(primary_url) as conn:
        for _ in range(300):
            rows = conn.execute(
                "SELECT slot_name, active FROM pg_replication_slots "
                "WHERE slot_name LIKE %s AND (%s::text IS NULL OR slot_name = %s)",
                [SLOT_PREFIX + "%", name, name],
            ).fetchall()
            if name is None:
                rows = [
                    (slot, active)
                    for slot, active in rows
                    if not _alive(int(slot.removeprefix(SLOT_PREFIX) or 0))
                ]
            busy = [slot for slot, active in rows if active]
            for slot, active in rows:
                if not active:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", [slot])
            if not busy:
                return
            time.sleep(0.1)  # the walsender of a replica just stopped is exiting


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM ends the block like Ctrl-C does (so the cleanup runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)


@contextmanager
def streaming_replica(
    primary_url: str = PRIMARY_URL, *, port: int | None = None, timeout: float = 600
) -> Iterator[str]:
    """A hot standby of the whole local cluster on `port` (default: the first free
    one from BENCH_REPLICA_PORT, 5442, that no other run holds), streaming from the
    primary; yields its URL (no database name: add the one to read). Stopped and
    removed at the end, its replication slot dropped."""
    with _port_claimed(port) as claimed:
        yield from _streaming_replica(primary_url, port=claimed, timeout=timeout)


def _streaming_replica(primary_url: str, *, port: int, timeout: float) -> Iterator[str]:
    if not replication_allowed(primary_url):
        params = conninfo_to_dict(primary_url)
        raise RuntimeError(
            "The primary refuses replication connections. Add to its pg_hba.conf "
            f"`host replication {params.get('user', 'postgres')} 127.0.0.1/32 trust` "
            "(or scram-sha-256 with a password) and reload it "
            "(SELECT pg_reload_conf()): no restart needed."
        )
    bin_dir = _pg_bin(primary_url)
    prefix, owner = _owner_prefix(primary_url)
    with _connect(primary_url) as conn:
        floors = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]  # nosec B608
            for name in _AT_LEAST_PRIMARY
        }
    _slots_forget(primary_url)
    slot = f"{SLOT_PREFIX}{os.getpid()}"
    params = conninfo_to_dict(primary_url)
    root = Path(tempfile.mkdtemp(prefix="amanah-replica-"))
    data = root / "data"
    started = False
    with _terminate_as_exit():
        try:
            account = pwd.getpwnam(owner)
            os.chown(root, account.pw_uid, account.pw_gid)
            root.chmod(0o700)
            # The primary keeps the WAL the standby needs. Made here, reserving WAL at
            # once, not by `pg_basebackup -C`: on a busy PostgreSQL 15 a checkpoint
            # during the copy invalidated a slot made that way ("exceeds
            # max_slot_wal_keep_size", with that setting at -1).
            with _connect(primary_url) as conn:
                conn.execute(
                    "SELECT pg_create_physical_replication_slot(%s, true)", [slot]
                )
            _run(
                [
                    *prefix,
                    str(bin_dir / "pg_basebackup"),
                    "-h", params.get("host", "127.0.0.1"),
                    "-p", str(params.get("port", 5432)),
                    "-U", params.get("user", "postgres"),
                    "-D", str(data),
                    "-R",  # standby.signal and primary_conninfo
                    "-X", "stream",
                    "-S", slot,
                    "--checkpoint=fast",
                    "--no-sync",  # a throwaway copy
                ],
                timeout=timeout,
            )  # fmt: skip
            conf = {
                "port": str(port),
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": f"'{root}'",
                "hot_standby": "on",
                # Long report reads are not cancelled by the primary's vacuum.
                "hot_standby_feedback": "on",
                "wal_receiver_status_interval": "1s",
                "fsync": "off",  # a throwaway copy
                **floors,
            }
            (data / "postgresql.conf").write_text(
                "".join(f"{key} = {value}\n" for key, value in conf.items())
            )
            (data / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            )
            (data / "pg_ident.conf").write_text("")
            for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
                os.chown(data / name, account.pw_uid, account.pw_gid)
            started = True
            _run(
                [
                    *prefix,
                    str(bin_dir / "pg_ctl"),
                    "-D", str(data),
                    "-l", str(root / "server.log"),
                    # Ready once it has replayed the WAL written during the copy:
                    # minutes when other work writes a lot meanwhile.
                    "-w", "-t", str(int(timeout)),
                    "start",
                ],
                timeout=timeout + 60,
            )  # fmt: skip
            url = f"postgres://{params.get('user', 'postgres')}@127.0.0.1:{port}"
            _streaming_wait(url, timeout=timeout)
            yield url
        except subprocess.CalledProcessError as exc:
            log = root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            program = Path(exc.cmd[len(prefix)]).name
            raise RuntimeError(
                f"{program} failed: {exc.stderr.strip()}\n{tail}"
            ) from exc
        finally:
            if started:
                with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                    stop = ["-D", str(data), "-m", "immediate", "-w", "stop"]
                    _run([*prefix, str(bin_dir / "pg_ctl"), *stop], timeout=120)
            with suppress(psycopg.Error):
                _slots_forget(primary_url, slot)
            shutil.rmtree(root, ignore_errors=True)


def _streaming_wait(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | str = "not streaming"
    while time.monotonic() < deadline:
        try:
            with _connect(f"{url}/postgres") as conn:
                recovering, streaming = conn.execute(
                    "SELECT pg_is_in_recovery(), EXISTS (SELECT 1 FROM "
                    "pg_stat_wal_receiver WHERE status = 'streaming')"
                ).fetchone()
                if recovering and streaming:
                    return
                last = (
                    "in recovery, not streaming yet" if recovering else "not a standby"
                )
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"The replica did not start streaming: {last}")


def replica_lag(url: str) -> float:
    """The replica's replay lag in seconds, as the application measures it
    (apps.core.replica.LAG_SQL: 0 when it has replayed up to the primary's WAL
    position of a moment before)."""
    from apps.core.replica import LAG_SQL, PRIMARY_LSN_SQL

    with _connect(f"{PRIMARY_URL}/postgres") as primary:
        primary_lsn = primary.execute(PRIMARY_LSN_SQL).fetchone()[0]
    with _connect(f"{url}/postgres") as conn:
        return float(conn.execute(LAG_SQL, [primary_lsn]).fetchone()[0])


def replica_lag_wait(url: str, seconds: float = 0.0, *, timeout: float = 300) -> float:
    """Wait until the replica's lag is within `seconds`; returns the lag then.
    Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        lag = replica_lag(url)
        if lag <= seconds:
            return lag
        if time.monotonic() > deadline:
            raise TimeoutError(f"Replica lag still {lag:.1f} s after {timeout} s.")
        time.sleep(0.1)


def replica_caught_up(
    url: str, primary_url: str = PRIMARY_URL, *, timeout: float = 600
) -> float:
    """Wait until the replica has replayed every byte of WAL the primary had written
    when called (e.g. a bench load); returns the seconds waited."""
    started = time.monotonic()
    with _connect(f"{primary_url}/postgres") as primary:
        target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with _connect(f"{url}/postgres") as replica:
        while not replica.execute(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]
        ).fetchone()[0]:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"Replica not at {target} after {timeout} s.")
            time.sleep(0.05)
    return time.monotonic() - started


@contextmanager
def replay_paused(url: str) -> Iterator[None]:
    """Replay stops on the replica (it keeps receiving WAL) until the block ends: its
    lag then grows with every transaction the primary commits."""
    with _connect(f"{url}/postgres") as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        while conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != (
            "paused"
        ):
            time.sleep(0.05)
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")
