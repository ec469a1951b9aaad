"""The test servers themselves (tests/servers.py) work: one quick round trip each, with plain
clients (boto3, http.client), independent of habackup's own agent."""

from __future__ import annotations

import base64
import http.client
import os
import socket
from urllib.parse import urlsplit

import pytest
from servers import AzuriteServer, Bucket, S3Server, WebDavServer

MiB = 1 << 20


def test_s3_put_get_and_multipart(s3_server: S3Server, s3_bucket: Bucket) -> None:
    url, options = s3_bucket
    assert url == f"s3://{s3_bucket.name}"
    assert options["aws_endpoint"] == s3_server.endpoint.rstrip("/")
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket.name, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=s3_bucket.name, Key="a/b.txt")["Body"].read() == b"hello"

    # A two-part multipart upload (parts but the last must be >= 5 MiB, as on AWS).
    first, last = os.urandom(5 * MiB), b"tail"
    upload = s3.create_multipart_upload(Bucket=s3_bucket.name, Key="big")
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=s3_bucket.name,
                Key="big",
                UploadId=upload["UploadId"],
                PartNumber=n,
                Body=body,
            )["ETag"],
        }
        for n, body in ((1, first), (2, last))
    ]
    s3.complete_multipart_upload(
        Bucket=s3_bucket.name,
        Key="big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert s3.get_object(Bucket=s3_bucket.name, Key="big")["Body"].read() == first + last


def test_s3_buckets_are_fresh(s3_server: S3Server, s3_bucket: Bucket) -> None:
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket.name).get("KeyCount") == 0


def _dav(
    server: WebDavServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    auth: tuple[str, str] | None = None,
    chunked: bool = False,
) -> tuple[int, bytes]:
    user, password = auth or (server.user, server.password)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        hdrs = {"Authorization": f"Basic {token}", **(headers or {})}
        if chunked:
            # An iterable body without Content-Length: http.client sends it chunked.
            step = 256 * 1024
            pieces = [(body or b"")[i : i + step] for i in range(0, len(body or b""), step)]
            conn.request(method, path, body=iter(pieces), headers=hdrs, encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_webdav_auth_mkcol_put_get_propfind(webdav_server: WebDavServer) -> None:
    status, _ = _dav(webdav_server, "GET", "/", auth=("habackup", "wrong"))
    assert status == 401
    parts = urlsplit(webdav_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("PUT", "/anon.bin", body=b"x")
    assert conn.getresponse().status == 401
    conn.close()
    assert not (webdav_server.root / "anon.bin").exists()

    assert _dav(webdav_server, "MKCOL", "/selftest")[0] == 201
    data = os.urandom(3 * MiB + 17)
    assert _dav(webdav_server, "PUT", "/selftest/len.bin", data)[0] == 201
    assert _dav(webdav_server, "PUT", "/selftest/chunked.bin", data, chunked=True)[0] == 201
    assert (webdav_server.root / "selftest" / "len.bin").read_bytes() == data
    assert (webdav_server.root / "selftest" / "chunked.bin").read_bytes() == data
    assert _dav(webdav_server, "GET", "/selftest/chunked.bin") == (200, data)

    status, body = _dav(webdav_server, "PROPFIND", "/selftest/", headers={"Depth": "1"})
    assert status == 207
    assert b"len.bin" in body
    assert b"chunked.bin" in body
    assert webdav_server.url_with_auth("selftest").endswith(
        f"{webdav_server.user}:{webdav_server.password}@{parts.netloc}/selftest"
    )


def test_azurite_container_and_blob(azurite_server: AzuriteServer) -> None:
    url = azurite_server.make_container("selftest-blobs")
    assert url == "az://selftest-blobs"
    status, _ = azurite_server.request(
        "PUT",
        "/selftest-blobs/dir/x.bin",
        b"blob body",
        headers={"x-ms-blob-type": "BlockBlob"},
    )
    assert status == 201
    assert azurite_server.list_blobs("selftest-blobs") == ["dir/x.bin"]
    assert azurite_server.request("GET", "/selftest-blobs/dir/x.bin") == (200, b"blob body")
    client = azurite_server.container_client("selftest-blobs")  # exists already: fine
    client.upload_blob("dir/y.bin", b"second", overwrite=True)
    assert [(b.name, b.size) for b in client.list_blobs(name_starts_with="dir/y")] == [
        ("dir/y.bin", 6)
    ]
    assert client.download_blob("dir/y.bin").readall() == b"second"
    client.delete_blob("dir/y.bin")
    assert [b.name for b in client.list_blobs()] == ["dir/x.bin"]
    # A wrong key is refused, so the signature check is real.
    wrong = AzuriteServer(azurite_server.endpoint, key=base64.b64encode(b"k" * 64).decode())
    assert wrong.request("GET", "/selftest-blobs?restype=container&comp=list")[0] == 403


def test_stopped_server_url_refuses(stopped_server_url: str) -> None:
    parts = urlsplit(stopped_server_url)
    assert parts.hostname == "127.0.0.1"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((parts.hostname, parts.port), timeout=5).close()
