"""The artifact store, over a local folder and fsspec's memory filesystem, plain and encrypted."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from cryptography.fernet import Fernet
from fsspec.implementations.memory import MemoryFileSystem

from heron._artifacts import CHUNK_SIZE, ArtifactStore, Blob, digest_file, digest_stream
from heron._errors import AlreadyExists, IntegrityError, InvalidInput, NotFound

MISSING = "0" * 64


@pytest.fixture(autouse=True)
def clean_memory_fs() -> Iterator[None]:
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture(params=["local", "memory", "local-encrypted", "memory-encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    url = str(tmp_path / "store") if request.param.startswith("local") else "memory://heron/store"
    key = Fernet.generate_key().decode() if request.param.endswith("encrypted") else None
    return ArtifactStore(url, encryption_key=key)


def stored_files(store: ArtifactStore) -> list[str]:
    """Every file under the store's root, relative to it."""
    fs, root = fsspec.core.url_to_fs(store.url)
    root = root.rstrip("/")
    return sorted(path[len(root) + 1 :] for path in fs.find(root))


def blob_key(store: ArtifactStore, digest: str) -> tuple[Any, str]:
    fs, root = fsspec.core.url_to_fs(store.url)
    return fs, f"{root.rstrip('/')}/blobs/{digest[:2]}/{digest[2:]}"


def tamper(store: ArtifactStore, digest: str, how: str) -> None:
    """Corrupt a stored blob: with another blob's stored bytes, garbage, or cut short."""
    fs, key = blob_key(store, digest)
    stored = fs.cat_file(key)
    if how == "swapped":
        other = store.put_bytes(b"something else entirely")
        stored = fs.cat_file(blob_key(store, other.digest)[1])
    elif how == "garbage":
        stored = b"\x00garbage" + stored[8:]
    elif how == "truncated":
        stored = stored[: len(stored) // 2]
    fs.pipe_file(key, stored)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


MODEL = {"model.bin": b"\x00\x01" * 1000, "conf/params.json": b"{}", "empty": b"", "same": b"{}"}


# -- blobs ------------------------------------------------------------------------------

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 7]


@pytest.mark.parametrize("size", SIZES, ids=["empty", "one", "chunk-1", "chunk", "2chunks+7"])
def test_roundtrip(store: ArtifactStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    blob = store.put_bytes(data)
    assert blob == Blob(sha256(data), size)
    assert store.exists(blob.digest)
    assert store.size(blob.digest) == size
    assert store.get_bytes(blob.digest) == data
    with store.open(blob.digest) as reader:
        assert reader.read(10) + reader.read() == data
    out = store.copy_to(blob.digest, tmp_path / "out" / "copy.bin")
    assert out.read_bytes() == data
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    assert store.put_file(src) == blob
    assert store.put_stream(io.BytesIO(data)) == blob


def test_equal_content_is_stored_once(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert stored_files(store) == [f"blobs/{first.digest[:2]}/{first.digest[2:]}"]


class FailingStream(io.RawIOBase):
    """Gives ``good_chunks`` chunks, then fails like a dropped connection."""

    def __init__(self, good_chunks: int) -> None:
        self.left = good_chunks

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self.left:
            raise ConnectionResetError("connection reset by peer")
        self.left -= 1
        return b"x" * size


@pytest.mark.parametrize("good_chunks", [0, 3], ids=["at-once", "mid-way"])
def test_failed_write_leaves_nothing(store: ArtifactStore, good_chunks: int) -> None:
    with pytest.raises(ConnectionResetError):
        store.put_stream(FailingStream(good_chunks))
    assert stored_files(store) == []


def test_text_stream_is_refused(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInput, match="binary"):
        store.put_stream(io.StringIO("text"))  # type: ignore[arg-type]
    assert stored_files(store) == []


def test_delete(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"bye")
    store.delete(blob.digest)
    assert not store.exists(blob.digest)
    with pytest.raises(NotFound):
        store.delete(blob.digest)


@pytest.mark.parametrize("how", ["swapped", "garbage", "truncated"])
def test_tampered_blob_is_detected(store: ArtifactStore, tmp_path: Path, how: str) -> None:
    blob = store.put_bytes(b"the real content" * 1000)
    tamper(store, blob.digest, how)
    with pytest.raises(IntegrityError, match=blob.digest):
        store.get_bytes(blob.digest)
    dest = tmp_path / "out" / "dest.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match=blob.digest):
        store.copy_to(blob.digest, dest)
    assert dest.read_bytes() == b"previous"  # replaced all at once or not at all
    assert os.listdir(dest.parent) == ["dest.bin"]


def test_verify_false_reads_swapped_content(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"the real content")
    tamper(store, blob.digest, "swapped")
    assert store.get_bytes(blob.digest, verify=False) == b"something else entirely"


def test_open_checks_the_unread_rest_on_clean_exit(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"the real content")
    tamper(store, blob.digest, "swapped")
    with pytest.raises(IntegrityError, match=blob.digest), store.open(blob.digest) as reader:
        reader.read(3)
    with pytest.raises(KeyError), store.open(blob.digest) as reader:  # the caller's error wins
        raise KeyError("caller")


BAD_DIGESTS = [
    ("", "empty"),
    ("a" * 63, "short"),
    ("a" * 65, "long"),
    ("A" * 64, "uppercase"),
    ("g" * 64, "not-hex"),
    ("../" + "a" * 61, "traversal"),
    ("ab/" + "c" * 61, "slash"),
    ("a" * 64 + "\n", "newline"),
    (123, "not-a-string"),
]

OPERATIONS: dict[str, Callable[[ArtifactStore, Any, Path], object]] = {
    "exists": lambda s, d, tmp: s.exists(d),
    "size": lambda s, d, tmp: s.size(d),
    "open": lambda s, d, tmp: s.open(d),
    "get_bytes": lambda s, d, tmp: s.get_bytes(d),
    "copy_to": lambda s, d, tmp: s.copy_to(d, tmp / "out"),
    "delete": lambda s, d, tmp: s.delete(d),
    "read_manifest": lambda s, d, tmp: s.read_manifest(d),
    "get_folder": lambda s, d, tmp: s.get_folder(d, tmp / "out"),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
@pytest.mark.parametrize(("digest", "_"), BAD_DIGESTS, ids=[i for _, i in BAD_DIGESTS])
def test_bad_digest_is_refused(
    store: ArtifactStore, tmp_path: Path, operation: Callable[..., object], digest: Any, _: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        operation(store, digest, tmp_path)
    assert caught.value.field == "digest"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "operation",
    [op for name, op in OPERATIONS.items() if name != "exists"],
    ids=[name for name in OPERATIONS if name != "exists"],
)
def test_missing_blob_is_not_found(
    store: ArtifactStore, tmp_path: Path, operation: Callable[..., object]
) -> None:
    with pytest.raises(NotFound, match=MISSING):
        operation(store, MISSING, tmp_path)
    assert not (tmp_path / "out").exists()
    assert not store.exists(MISSING)


def test_digest_helpers_match_hashlib(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 3)
    (tmp_path / "f").write_bytes(data)
    assert digest_file(tmp_path / "f") == digest_stream(io.BytesIO(data)) == sha256(data)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    ArtifactStore(tmp_path / "store", encryption_key="not a key")
    assert not (tmp_path / "store").exists()


def test_put_file_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "nope")
    with pytest.raises(InvalidInput):
        store.put_file(tmp_path)


# -- encryption -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["local", "memory"])
def test_encrypted_at_rest(tmp_path: Path, backend: str) -> None:
    url = str(tmp_path / "store") if backend == "local" else "memory://heron/store"
    key = Fernet.generate_key().decode()
    store = ArtifactStore(url, encryption_key=key)
    data = b"secret model weights " * 100_000  # two chunks
    blob = store.put_bytes(data)
    assert blob.digest == sha256(data)  # digests are of the plaintext
    fs, path = blob_key(store, blob.digest)
    stored = fs.cat_file(path)
    assert stored != data
    assert b"secret model weights" not in stored
    assert store.get_bytes(blob.digest) == data
    assert store.size(blob.digest) == len(data)

    other_key = ArtifactStore(url, encryption_key=Fernet.generate_key().decode())
    with pytest.raises(IntegrityError, match="decrypted"):
        other_key.get_bytes(blob.digest)
    with pytest.raises(IntegrityError, match=blob.digest):
        ArtifactStore(url).get_bytes(blob.digest)


def test_invalid_encryption_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, encryption_key="hunter2")
    with pytest.raises(InvalidInput) as caught:
        store.put_bytes(b"x")
    assert caught.value.field == "encryption_key"
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None


# -- folders ----------------------------------------------------------------------------


def test_folder_roundtrip(store: ArtifactStore, tmp_path: Path) -> None:
    src = make_folder(tmp_path / "model", MODEL)
    manifest_blob = store.put_folder(src)
    manifest = store.read_manifest(manifest_blob.digest)
    assert [f.path for f in manifest.files] == sorted(MODEL)
    assert {f.path: (f.digest, f.size) for f in manifest.files} == {
        rel: (sha256(data), len(data)) for rel, data in MODEL.items()
    }
    assert store.put_folder(src) == manifest_blob  # same folder, same manifest
    assert len(stored_files(store)) == 1 + len(set(MODEL.values()))  # "same" is stored once

    dest = store.get_folder(manifest_blob.digest, tmp_path / "out" / "model")
    assert read_folder(dest) == MODEL
    assert sorted(os.listdir(tmp_path / "out")) == ["model"]


def test_get_folder_into_existing_folder(store: ArtifactStore, tmp_path: Path) -> None:
    manifest = store.put_folder(make_folder(tmp_path / "model", MODEL))
    (tmp_path / "empty").mkdir()
    assert read_folder(store.get_folder(manifest.digest, tmp_path / "empty")) == MODEL
    with pytest.raises(AlreadyExists):
        store.get_folder(manifest.digest, tmp_path / "model")
    with pytest.raises(AlreadyExists):
        store.get_folder(manifest.digest, tmp_path / "model" / "empty")  # a file


@pytest.mark.parametrize("how", ["swapped", "garbage", "truncated"])
def test_tampered_folder_file_is_named(store: ArtifactStore, tmp_path: Path, how: str) -> None:
    manifest = store.put_folder(make_folder(tmp_path / "model", MODEL))
    tamper(store, sha256(MODEL["conf/params.json"]), how)
    dest = tmp_path / "out" / "model"
    with pytest.raises(IntegrityError, match=r"conf/params\.json"):
        store.get_folder(manifest.digest, dest)
    assert os.listdir(tmp_path / "out") == []  # no half folder, no staging left behind


def test_missing_folder_file_is_named(store: ArtifactStore, tmp_path: Path) -> None:
    manifest = store.put_folder(make_folder(tmp_path / "model", MODEL))
    store.delete(sha256(MODEL["model.bin"]))
    with pytest.raises(NotFound, match=r"model\.bin"):
        store.get_folder(manifest.digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()


BAD_MANIFEST_PATHS = [
    (["../x"], "parent"),
    (["a/../../x"], "nested-parent"),
    (["/tmp/heron-escape"], "absolute"),
    (["%2e%2e/x"], "encoded-parent"),
    (["..\\x"], "backslash"),
    (["a//b"], "empty-part"),
    (["./x"], "dot"),
    ([""], "empty"),
    (["a\x00b"], "nul"),
    (["x", "x"], "duplicate"),
    (["a", "a/b"], "file-inside-file"),
]


@pytest.mark.parametrize(("paths", "_"), BAD_MANIFEST_PATHS, ids=[i for _, i in BAD_MANIFEST_PATHS])
def test_crafted_manifest_is_refused(
    store: ArtifactStore, tmp_path: Path, paths: list[str], _: str
) -> None:
    content = store.put_bytes(b"payload")
    files = [{"path": p, "digest": content.digest, "size": content.size} for p in paths]
    crafted = store.put_bytes(json.dumps({"files": files}).encode())
    with pytest.raises(InvalidInput):
        store.read_manifest(crafted.digest)
    dest = tmp_path / "sandbox" / "dest"
    with pytest.raises(InvalidInput):
        store.get_folder(crafted.digest, dest)
    assert not (tmp_path / "sandbox").exists()
    assert not Path("/tmp/heron-escape").exists()


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"{}",
        b'{"files": [{"path": "a"}]}',
        b'{"files": [{"path": "a", "digest": "../../etc/passwd", "size": 1}]}',
    ],
    ids=["not-json", "no-files", "missing-fields", "digest-is-a-path"],
)
def test_non_manifest_blob_is_refused(store: ArtifactStore, document: bytes) -> None:
    blob = store.put_bytes(document)
    with pytest.raises(InvalidInput, match="not a folder manifest"):
        store.read_manifest(blob.digest)


def _file_link(folder: Path, outside: Path) -> None:
    (folder / "link").symlink_to(outside / "secret")


def _dir_link(folder: Path, outside: Path) -> None:
    (folder / "sub" / "link").symlink_to(outside, target_is_directory=True)


def _inner_link(folder: Path, outside: Path) -> None:
    (folder / "link").symlink_to(folder / "model.bin")


def _dangling_link(folder: Path, outside: Path) -> None:
    (folder / "link").symlink_to(folder / "nothing")


def _fifo(folder: Path, outside: Path) -> None:
    os.mkfifo(folder / "link")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs need POSIX")
@pytest.mark.parametrize(
    "make_link",
    [_file_link, _dir_link, _inner_link, _dangling_link, _fifo],
    ids=["file-outside", "dir-outside", "inside", "dangling", "fifo"],
)
def test_links_in_folder_are_refused(
    store: ArtifactStore, tmp_path: Path, make_link: Callable[[Path, Path], None]
) -> None:
    outside = make_folder(tmp_path / "outside", {"secret": b"password"})
    folder = make_folder(tmp_path / "model", {"model.bin": b"w", "sub/x": b"x"})
    make_link(folder, outside)
    with pytest.raises(InvalidInput, match="link"):
        store.put_folder(folder)
    assert stored_files(store) == []  # checked before anything is stored


def test_put_folder_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_folder(tmp_path / "nope")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(InvalidInput):
        store.put_folder(tmp_path / "file")


# -- streaming --------------------------------------------------------------------------

STREAMING_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from heron._artifacts import ArtifactStore

    src, root, out = sys.argv[1:]
    store = ArtifactStore(root)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    blob = store.put_file(src)
    store.copy_to(blob.digest, out)
    with store.open(blob.digest) as reader:
        while reader.read(1 << 20):
            pass
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(blob.digest, blob.size, grown_kib)
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_200_mb_streams_in_bounded_memory(tmp_path: Path) -> None:
    size_mib = 200
    src = tmp_path / "big.bin"
    sha = hashlib.sha256()
    block = os.urandom(CHUNK_SIZE)
    with open(src, "wb") as f:
        for i in range(size_mib):
            chunk = i.to_bytes(4, "big") + block[4:]
            sha.update(chunk)
            f.write(chunk)
    out = tmp_path / "copy.bin"
    result = subprocess.run(
        [sys.executable, "-c", STREAMING_SCRIPT, str(src), str(tmp_path / "store"), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    digest, size, grown_kib = result.stdout.split()
    assert (digest, int(size)) == (sha.hexdigest(), size_mib * CHUNK_SIZE)
    assert int(grown_kib) < 50 * 1024, f"peak RSS grew by {int(grown_kib) // 1024} MiB"
    assert digest_file(out) == digest
