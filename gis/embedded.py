"""The embedded PostGIS: a PostgreSQL cluster the project runs itself under a local folder.

Layout under ``GRIDGOV_HOME`` (default ``<project>/.gridgov``)::

    pgdata/         the cluster (owned by the server's user)
    postgres.log    the server log
    password        the generated superuser password (mode 0600)
    port            the TCP port chosen at init time

The server listens on 127.0.0.1 only, with no Unix socket (socket paths have a 107-byte limit
that deep project folders exceed), and password authentication (scram-sha-256) so other local
users cannot walk in. PostgreSQL refuses to run as root: when we are root the server runs as the
unprivileged ``postgres`` user, which must be able to reach the data folder; when it cannot (the
project lives under ``/root``, say) the cluster goes to ``/var/lib/gridgov/<hash>`` instead.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gis.config import Settings, get_settings

SUPERUSER = "gridgov"
DATABASE = "gridgov"
SERVER_USER_WHEN_ROOT = "postgres"


class EmbeddedError(RuntimeError):
    """The embedded server could not be set up or started; the message says why."""


@dataclass(frozen=True)
class Status:
    initialised: bool
    running: bool
    port: int | None
    data_dir: Path
    log_file: Path

    def describe(self) -> str:
        if not self.initialised:
            return f"not initialised (data folder {self.data_dir})"
        state = "running" if self.running else "stopped"
        return f"{state} on 127.0.0.1:{self.port} (data {self.data_dir}, log {self.log_file})"


class EmbeddedPostgres:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.home = self.settings.home
        self.password_file = self.home / "password"
        self.port_file = self.home / "port"

    # -- paths and identity -------------------------------------------------------------------
    @property
    def bin(self) -> Path:
        if self.settings.pg_bin is None:
            raise EmbeddedError(
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; "
                "install postgresql-15 and postgresql-15-postgis-3 (scripts/bootstrap.sh does)"
            )
        return self.settings.pg_bin

    @property
    def log_file(self) -> Path:
        """Beside the data folder, where the server's user can write it."""
        return self.data_dir.parent / "postgres.log"

    @property
    def server_user(self) -> str | None:
        """The user the server runs as, or None for the current user."""
        return SERVER_USER_WHEN_ROOT if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        pointer = self.home / "pgdata-location"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        return self.home / "pgdata"

    def _choose_data_dir(self) -> Path:
        preferred = self.home / "pgdata"
        if self.server_user is None or self._server_user_can_reach(self.home):
            return preferred
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        fallback = Path("/var/lib/gridgov") / digest / "pgdata"
        (self.home / "pgdata-location").write_text(f"{fallback}\n")
        return fallback

    def _server_user_can_reach(self, folder: Path) -> bool:
        result = subprocess.run(
            ["runuser", "-u", self.server_user, "--", "test", "-x", str(folder)],
            capture_output=True,
        )
        return result.returncode == 0

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.server_user:
            args = ["runuser", "-u", self.server_user, "--", *args]
        return subprocess.run(args, capture_output=True, text=True, **kwargs)

    def _chown(self, path: Path) -> None:
        if self.server_user:
            entry = pwd.getpwnam(self.server_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- state ------------------------------------------------------------------------------
    @property
    def port(self) -> int | None:
        return int(self.port_file.read_text()) if self.port_file.exists() else None

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def is_initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialised():
            return False
        result = self._run([str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return result.returncode == 0

    def status(self) -> Status:
        return Status(
            initialised=self.is_initialised(),
            running=self.is_running(),
            port=self.port,
            data_dir=self.data_dir,
            log_file=self.log_file,
        )

    def url(self, database: str = DATABASE) -> str:
        if not self.is_initialised():
            raise EmbeddedError("the embedded PostGIS is not initialised: run `gridgov db start`")
        return (
            f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"
        )

    # -- lifecycle --------------------------------------------------------------------------
    def init(self) -> bool:
        """Create the cluster if there is none. Returns True when it created one."""
        if self.is_initialised():
            return False
        self.home.mkdir(parents=True, exist_ok=True)
        data_dir = self._choose_data_dir()
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        self._chown(data_dir)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)
        self.port_file.write_text(f"{self._free_port(self.settings.pg_port)}\n")

        pwfile = data_dir.parent / f".pw-{secrets.token_hex(4)}"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        try:
            result = self._run(
                [
                    str(self.bin / "initdb"),
                    "-D", str(data_dir),
                    "-U", SUPERUSER,
                    "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise EmbeddedError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        self._write_config(data_dir)
        return True

    def _write_config(self, data_dir: Path) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "100",
            "shared_buffers": "256MB",
            "work_mem": "32MB",
            "maintenance_work_mem": "256MB",
            "log_min_duration_statement": "2000",
        }
        with open(data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# gridgov embedded settings\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")

    def start(self, timeout: int = 60) -> bool:
        """Initialise if needed, start if stopped, and make sure the database exists.

        Returns True when it started the server.
        """
        self.init()
        started = False
        if not self.is_running():
            if not self._port_is_free(self.port):
                raise EmbeddedError(
                    f"port {self.port} on 127.0.0.1 is taken by another program; "
                    f"stop it or edit {self.port_file}"
                )
            self.log_file.touch()
            self._chown(self.log_file)
            result = self._run(
                [
                    str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                    "-w", "-t", str(timeout), "start",
                ]
            )
            if result.returncode != 0:
                tail = self.log_tail()
                raise EmbeddedError(f"the server did not start:\n{result.stderr}\n{tail}")
            started = True
        self._wait_ready(timeout)
        self._ensure_database()
        return started

    def stop(self) -> bool:
        """Stop the server (fast shutdown). Returns True when it was running."""
        if not self.is_running():
            return False
        result = self._run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
        )
        if result.returncode != 0:
            raise EmbeddedError(f"pg_ctl stop failed:\n{result.stderr}")
        return True

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    # -- helpers ----------------------------------------------------------------------------
    def _wait_ready(self, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self._run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)]
            )
            if result.returncode == 0:
                return
            time.sleep(0.2)
        raise EmbeddedError(f"the server did not accept connections in {timeout}s")

    def _ensure_database(self) -> None:
        import psycopg

        conninfo = (
            f"host=127.0.0.1 port={self.port} user={SUPERUSER} "
            f"password={self.password} dbname=postgres"
        )
        with psycopg.connect(conninfo, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')

    @staticmethod
    def _port_is_free(port: int | None) -> bool:
        if port is None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # as PostgreSQL binds: connections of a server just stopped linger in TIME_WAIT
            # and must not make its own port look taken on a restart
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    @classmethod
    def _free_port(cls, preferred: int) -> int:
        for port in range(preferred, preferred + 50):
            if cls._port_is_free(port):
                return port
        raise EmbeddedError(f"no free TCP port on 127.0.0.1 in {preferred}..{preferred + 49}")
