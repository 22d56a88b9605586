"""The artifact store on an object store: ``s3://`` through s3fs, against a local S3
(moto's server on a loopback port), so the fsspec path is exercised for real."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("s3fs", reason="s3fs is in the dev extra; install it to test s3://")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")

from heron._artifacts import ArtifactStore  # noqa: E402
from heron._errors import IntegrityError  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    bucket = f"heron-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    import fsspec

    fsspec.filesystem("s3").invalidate_cache()
    return ArtifactStore(f"s3://{bucket}/artifacts")


def test_s3_round_trip_dedup_and_folders(s3_store: ArtifactStore, tmp_path: Path) -> None:
    blob = s3_store.put_bytes(b"hello s3")
    assert s3_store.put_bytes(b"hello s3") == blob
    assert s3_store.get_bytes(blob.digest) == b"hello s3"
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"\x00" * 3000)
    (folder / "sub" / "b.txt").write_text("b")
    manifest = s3_store.put_folder(folder)
    out = s3_store.get_folder(manifest.digest, tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "b"
    assert (out / "a.bin").read_bytes() == b"\x00" * 3000


def test_s3_tampered_object_is_detected(s3_store: ArtifactStore) -> None:
    import fsspec

    blob = s3_store.put_bytes(b"original content")
    fs = fsspec.filesystem("s3")
    matches = [
        p for p in fs.find(s3_store.url.removeprefix("s3://")) if p.endswith(blob.digest[2:])
    ]
    assert matches, "blob not where the layout says"
    fs.pipe(matches[0], b"tampered content")
    with pytest.raises(IntegrityError):
        s3_store.get_bytes(blob.digest)
