"""Real storage servers on 127.0.0.1 for the object-store agent's tests, as pytest fixtures.

Registered from conftest.py with ``pytest_plugins = ["servers"]``. Every server runs as a
subprocess in its own session (process group) on a free port, is polled until it answers HTTP,
and is killed with its whole group when the session ends, so nothing outlives pytest:

- ``s3_server`` (session): moto's server mode, an in-process S3 (objects above 1 MiB spill to
  temp files), any credentials accepted but requests must still be SigV4-signed.
- ``s3_bucket`` (function): a fresh, empty bucket on it: ``(url, options)``.
- ``webdav_server`` (session): wsgidav on cheroot serving a temp dir, HTTP basic auth required.
- ``azurite_server`` (session): Azurite's blob service from ``.cache/node``
  (``scripts/install-test-servers.sh``); skipped only when ``node`` is not installed.
- ``azure_container`` (function): a fresh container on it: ``(url, options)``.
- ``stopped_server_url`` (function): ``http://127.0.0.1:PORT`` with nothing listening.

The ``run_*`` context managers are plain functions that ``benches/upload_s3.py`` reuses.
Nothing here talks to anything but 127.0.0.1 (Azurite's telemetry is switched off).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Generous: a cold moto import on a loaded 2-core CI machine can take several seconds.
STARTUP_TIMEOUT = 60.0

# Azurite and the legacy emulator's well-known account and key (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
AZURITE_BIN = REPO / ".cache" / "node" / "node_modules" / ".bin" / "azurite-blob"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the kernel's pick, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _http_status(port: int, path: str = "/") -> int | None:
    """The status of a GET, or None when nothing answers (yet)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@dataclass
class _Process:
    """A server subprocess in its own process group, its output going to a log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM the whole group, SIGKILL it if still there after 5 s, and reap the leader.
        Children that left the group (sshd's per-connection processes call setsid) are
        SIGKILLed too."""
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; children that ignored SIGTERM still get the SIGKILL.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            return


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc; empty elsewhere)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


# Looked up here, not in the forked child: importing or dlopen-ing between fork and exec can
# deadlock on locks another thread held at the fork.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1
_SIGTERM = int(signal.SIGTERM)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when pytest dies without tearing down (SIGKILL,
    pytest-timeout's os._exit), so a server never outlives its test run. Linux only."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, _SIGTERM)


@contextlib.contextmanager
def _serve(
    name: str,
    argv: Sequence[str],
    port: int,
    log_dir: Path,
    *,
    ready_path: str = "/",
    env: Mapping[str, str] | None = None,
    ready: Callable[[], bool] | None = None,
) -> Iterator[_Process]:
    """Starts ``argv`` in a new session, waits until ``port`` answers any HTTP status on
    ``ready_path`` (or until ``ready()`` says so), yields, then kills the process group, also
    when the body raises."""
    is_ready = ready or (lambda: _http_status(port, ready_path) is not None)

    log = log_dir / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own session = own process group, so stop() reaches node's or werkzeug's children.
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env={**os.environ, **(env or {})},
            cwd=log_dir,
        )
    server = _Process(proc, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not is_ready():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode} before answering on port {port}:\n"
                    + server.log_tail()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} did not answer on port {port} within {STARTUP_TIMEOUT:.0f} s:\n"
                    + server.log_tail()
                )
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


# --- S3: moto ------------------------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str
    access_key: str = "testing-access-key"
    secret_key: str = "testing-secret-key"
    region: str = "us-east-1"

    def client(self) -> Any:
        """A boto3 S3 client for this server (imported lazily: boto3 takes ~0.3 s to import)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def make_bucket(self, name: str) -> str:
        """Creates bucket ``name`` and returns its ``s3://`` URL."""
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def options(self, bucket: str | None = None) -> dict[str, str]:
        """object_store's S3 options for this server. ``bucket`` is accepted for symmetry with
        the other servers; the bucket itself travels in the agent's URL."""
        del bucket
        return {
            "aws_endpoint": self.endpoint,
            "aws_allow_http": "true",
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "aws_region": self.region,
        }


@contextlib.contextmanager
def run_moto(log_dir: Path) -> Iterator[S3Server]:
    """moto's server mode on a free port. Objects live in the server process: bodies over
    ``MOTO_S3_DEFAULT_KEY_BUFFER_SIZE`` (1 MiB here) roll over into temp files, so a 1 GiB
    upload does not mean 1 GiB of moto RSS; either way it is not the caller's memory."""
    port = free_port()
    env = {
        # moto reads these at import; keep it from looking at the developer's ~/.aws.
        "AWS_ACCESS_KEY_ID": "testing-access-key",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(1 << 20),
        "TMPDIR": str(log_dir),
    }
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    with _serve("moto", argv, port, log_dir, ready_path="/moto-api/", env=env):
        yield S3Server(endpoint=f"http://{HOST}:{port}")


class Bucket(NamedTuple):
    """Unpacks as ``url, options``; ``.name`` is the bare name."""

    url: str  # "s3://name"
    options: dict[str, str]

    @property
    def name(self) -> str:
        return self.url.removeprefix("s3://")


# --- WebDAV: wsgidav -------------------------------------------------------------------------


@dataclass
class WebDavServer:
    url: str  # "http://127.0.0.1:PORT", the share is at "/"
    root: Path  # the directory it serves
    user: str = "habackup"
    password: str = "dav-secret"

    def url_with_auth(self, path: str = "") -> str:
        """``http://user:password@127.0.0.1:PORT/path``: the agent takes WebDAV credentials
        from the URL's userinfo (both are URL-safe here, so no percent-encoding needed)."""
        return f"http://{self.user}:{self.password}@{self.url.removeprefix('http://')}/" + (
            path.lstrip("/")
        )


@contextlib.contextmanager
def run_wsgidav(root: Path, log_dir: Path) -> Iterator[WebDavServer]:
    """wsgidav (cheroot) serving ``root`` read-write, basic auth only, for one user."""
    port = free_port()
    server = WebDavServer(url=f"http://{HOST}:{port}", root=root)
    config = {
        "host": HOST,
        "port": port,
        "server": "cheroot",
        "provider_mapping": {"/": str(root)},
        "http_authenticator": {
            "domain_controller": None,  # None = SimpleDomainController over simple_dc below
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
            "trusted_auth_header": None,
        },
        "simple_dc": {"user_mapping": {"*": {server.user: {"password": server.password}}}},
        "dir_browser": {"enable": False},
        "lock_storage": True,
        "verbose": 1,
    }
    config_file = log_dir / f"wsgidav-{port}.json"
    config_file.write_text(json.dumps(config))
    argv = [sys.executable, "-m", "wsgidav.server.server_cli", "-c", str(config_file)]
    # An unauthenticated GET gets a 401, which is an answer: good enough for "up".
    with _serve("wsgidav", argv, port, log_dir):
        yield server


# --- Azure blob: Azurite ---------------------------------------------------------------------


@dataclass
class AzuriteServer:
    endpoint: str  # "http://127.0.0.1:PORT/devstoreaccount1" (path-style account)
    account: str = AZURITE_ACCOUNT
    key: str = AZURITE_KEY
    _names: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def request(
        self,
        method: str,
        path_and_query: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """A Shared Key-signed blob-service request; ``path_and_query`` is relative to the
        account, e.g. ``"/mycontainer?restype=container"``. Returns (status, body)."""
        parts = urlsplit(self.endpoint + path_and_query)
        hdrs = {
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": "2021-08-06",
            **(headers or {}),
        }
        hdrs["Content-Length"] = str(len(body))
        hdrs["Authorization"] = f"SharedKey {self.account}:" + self._sign(
            method, parts.path, parts.query, hdrs
        )
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _sign(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> str:
        """Shared Key signature (https://learn.microsoft.com/rest/api/storageservices/
        authorize-with-shared-key), canonical resource "/account" + the URL path, which for
        the path-style emulator URL repeats the account, as Azurite expects."""
        h = {k.lower(): v for k, v in headers.items()}
        length = h.get("content-length", "")
        standard = [
            method,
            h.get("content-encoding", ""),
            h.get("content-language", ""),
            "" if length == "0" else length,
            h.get("content-md5", ""),
            h.get("content-type", ""),
            "",  # Date: x-ms-date is used instead
            h.get("if-modified-since", ""),
            h.get("if-match", ""),
            h.get("if-none-match", ""),
            h.get("if-unmodified-since", ""),
            h.get("range", ""),
        ]
        canonical_headers = "".join(
            f"{k}:{h[k].strip()}\n" for k in sorted(h) if k.startswith("x-ms-")
        )
        resource = f"/{self.account}{path}"
        params: dict[str, list[str]] = {}
        for k, v in parse_qsl(query, keep_blank_values=True):
            params.setdefault(k.lower(), []).append(v)
        for k in sorted(params):
            resource += f"\n{k}:{','.join(sorted(params[k]))}"
        to_sign = "\n".join(standard) + "\n" + canonical_headers + resource
        mac = hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256)
        return base64.b64encode(mac.digest()).decode()

    def make_container(self, name: str) -> str:
        """Creates container ``name`` and returns its ``az://`` URL."""
        status, body = self.request("PUT", f"/{quote(name)}?restype=container")
        if status != 201:
            raise RuntimeError(f"create container {name}: HTTP {status} {body[:500]!r}")
        return f"az://{name}"

    def list_blobs(self, container: str) -> list[str]:
        """Blob names in ``container``."""
        return [b.name for b in ContainerClient(self, container).list_blobs()]

    def container_client(self, container: str) -> ContainerClient:
        """A small stand-in for azure-storage-blob's ``ContainerClient`` (no SDK dependency);
        creates the container if it does not exist yet."""
        status, body = self.request("PUT", f"/{quote(container)}?restype=container")
        if status not in (201, 409):  # 409: ContainerAlreadyExists
            raise RuntimeError(f"create container {container}: HTTP {status} {body[:500]!r}")
        return ContainerClient(self, container)

    def options(self, container: str | None = None) -> dict[str, str]:
        """object_store's Azure options. An explicit endpoint rather than
        ``azure_storage_use_emulator``: the emulator mode takes its URL only from the
        AZURITE_BLOB_STORAGE_URL environment variable (default port 10000), and the endpoint
        form gives the same path-style URLs (endpoint/container/blob)."""
        del container
        return {
            "azure_storage_account_name": self.account,
            "azure_storage_account_key": self.key,
            "azure_endpoint": self.endpoint,
            "azure_allow_http": "true",
        }


class BlobProperties(NamedTuple):
    name: str
    size: int


class BlobDownload(NamedTuple):
    data: bytes

    def readall(self) -> bytes:
        return self.data


@dataclass
class ContainerClient:
    """The few ``azure.storage.blob.ContainerClient`` methods the tests use, same signatures."""

    server: AzuriteServer
    container: str

    def _path(self, blob: str) -> str:
        return f"/{quote(self.container)}/{quote(blob)}"

    def upload_blob(self, name: str, data: bytes, *, overwrite: bool = False) -> None:
        headers = {"x-ms-blob-type": "BlockBlob"}
        if not overwrite:
            headers["If-None-Match"] = "*"
        status, body = self.server.request("PUT", self._path(name), data, headers)
        if status != 201:
            raise RuntimeError(f"upload {name}: HTTP {status} {body[:500]!r}")

    def download_blob(self, name: str) -> BlobDownload:
        status, body = self.server.request("GET", self._path(name))
        if status != 200:
            raise RuntimeError(f"download {name}: HTTP {status} {body[:500]!r}")
        return BlobDownload(body)

    def delete_blob(self, name: str) -> None:
        status, body = self.server.request("DELETE", self._path(name))
        if status != 202:
            raise RuntimeError(f"delete {name}: HTTP {status} {body[:500]!r}")

    def list_blobs(self, name_starts_with: str | None = None) -> list[BlobProperties]:
        """All blobs (following continuation markers), optionally under a prefix."""
        found: list[BlobProperties] = []
        marker = ""
        while True:
            query = "restype=container&comp=list"
            if name_starts_with:
                query += f"&prefix={quote(name_starts_with, safe='')}"
            if marker:
                query += f"&marker={quote(marker, safe='')}"
            status, body = self.server.request("GET", f"/{quote(self.container)}?{query}")
            if status != 200:
                raise RuntimeError(f"list {self.container}: HTTP {status} {body[:500]!r}")
            text = body.decode()
            for blob in re.findall(r"<Blob>(.*?)</Blob>", text, re.S):
                name = re.search(r"<Name>([^<]*)</Name>", blob)
                size = re.search(r"<Content-Length>(\d+)</Content-Length>", blob)
                assert name is not None
                found.append(
                    BlobProperties(_xml_unescape(name.group(1)), int(size.group(1)) if size else 0)
                )
            next_marker = re.search(r"<NextMarker>([^<]+)</NextMarker>", text)
            if next_marker is None:
                return found
            marker = _xml_unescape(next_marker.group(1))


def _xml_unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


@contextlib.contextmanager
def run_azurite(location: Path, log_dir: Path) -> Iterator[AzuriteServer]:
    """Azurite's blob service on a free port, storing into ``location``."""
    port = free_port()
    argv = [
        str(AZURITE_BIN),
        "--blobHost",
        HOST,
        "--blobPort",
        str(port),
        "--location",
        str(location),
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
        # Otherwise it posts telemetry to Application Insights on the internet.
        "--disableTelemetry",
    ]
    with _serve("azurite", argv, port, log_dir):
        yield AzuriteServer(endpoint=f"http://{HOST}:{port}/{AZURITE_ACCOUNT}")


class Container(NamedTuple):
    """Unpacks as ``url, options``; ``.name`` is the bare name."""

    url: str  # "az://name"
    options: dict[str, str]

    @property
    def name(self) -> str:
        return self.url.removeprefix("az://")


# --- fixtures ------------------------------------------------------------------------------


def _unique_name(request: pytest.FixtureRequest, counter: Iterator[int]) -> str:
    """A bucket/container name from the test's name: 3-63 of [a-z0-9-], unique in the session."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"t{next(counter)}-{stem or 'x'}"


_bucket_counter = itertools.count()
_container_counter = itertools.count()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the servers' output and config go (shown in the error if one fails to start)."""
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def s3_server(server_logs: Path) -> Iterator[S3Server]:
    with run_moto(server_logs) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> Bucket:
    """A new empty bucket for this test: ``url, options = s3_bucket``."""
    name = _unique_name(request, _bucket_counter)
    return Bucket(s3_server.make_bucket(name), s3_server.options(name))


@pytest.fixture(scope="session")
def webdav_server(
    tmp_path_factory: pytest.TempPathFactory, server_logs: Path
) -> Iterator[WebDavServer]:
    root = tmp_path_factory.mktemp("webdav-root")
    with run_wsgidav(root, server_logs) as server:
        yield server


@pytest.fixture(scope="session")
def azurite_server(
    tmp_path_factory: pytest.TempPathFactory, server_logs: Path
) -> Iterator[AzuriteServer]:
    if shutil.which("node") is None:
        pytest.skip("Azurite needs Node.js: `node` is not on PATH")
    if not AZURITE_BIN.exists():
        pytest.fail(f"{AZURITE_BIN} missing: run scripts/install-test-servers.sh")
    with run_azurite(tmp_path_factory.mktemp("azurite"), server_logs) as server:
        yield server


@pytest.fixture
def azure_container(azurite_server: AzuriteServer, request: pytest.FixtureRequest) -> Container:
    """A new empty container for this test: ``url, options = azure_container``."""
    name = _unique_name(request, _container_counter)
    return Container(azurite_server.make_container(name), azurite_server.options(name))


@pytest.fixture
def stopped_server_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: connections are refused at once."""
    return f"http://{HOST}:{free_port()}"


def _selftest() -> None:
    """``python tests/servers.py``: start each server once and print what it yields."""
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        with run_moto(logs) as s3:
            print("moto", s3)
        (logs / "dav").mkdir()
        with run_wsgidav(logs / "dav", logs) as dav:
            print("wsgidav", dav)
        if AZURITE_BIN.exists():
            (logs / "az").mkdir()
            with run_azurite(logs / "az", logs) as az:
                print("azurite", az, az.make_container("selftest"))


if __name__ == "__main__":
    _selftest()
