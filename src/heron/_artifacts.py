"""The content-addressed artifact store.

Every blob lives under the SHA-256 of its content, ``<root>/blobs/ab/cdef…``, in a local
folder or behind any fsspec URL (``s3://…``; ``memory://`` in tests). A write goes to
``<root>/tmp/`` first and is moved into place only once complete, so a reader never sees half
a blob, and equal content is stored once. Content streams in and out in 1 MiB chunks and is
hashed on the way, so a blob of any size costs a few MiB of memory.

A folder (a model) is stored as a *manifest*, itself a blob::

    {"files": [{"digest": "…", "path": "rel/path", "size": n}, …]}

With an ``encryption_key`` each blob is stored as a series of Fernet tokens, one per chunk,
so it still streams; digests stay those of the plaintext, so dedup and verification are the
same either way. One root holds either encrypted or plain blobs, never both::

    MAGIC · (u32 token length · token)* · u32 0 · u64 plaintext size
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from heron._errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from heron._names import check_relative_path

if TYPE_CHECKING:  # cryptography is imported only by stores that encrypt
    from cryptography.fernet import Fernet

CHUNK_SIZE = 1 << 20
StrPath = str | os.PathLike[str]

_DIGEST = re.compile(r"[0-9a-f]{64}")
_MAGIC = b"HERON-FERNET-1\n"
_LENGTH = struct.Struct(">I")
_SIZE = struct.Struct(">Q")
_MAX_TOKEN = 2 * CHUNK_SIZE  # a 1 MiB chunk encrypts to ~1.4 MB; refuse absurd lengths


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


class ManifestEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(BaseModel):
    """The files of a folder, sorted by path."""

    model_config = ConfigDict(frozen=True)

    files: tuple[ManifestEntry, ...]

    def to_json(self) -> bytes:
        # Canonical form, so the same folder always gets the same manifest digest.
        doc = self.model_dump(mode="json")
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def check_digest(value: object, field: str = "digest") -> str:
    """Return ``value`` if it is 64 lowercase hex characters: digests become paths."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        shown = repr(value)[:80]
        raise InvalidInput(f"{field} must be 64 lowercase hex characters, got {shown}", field=field)
    return value


def digest_stream(stream: IO[bytes]) -> str:
    """SHA-256 of what is left in ``stream``, read in chunks."""
    sha = hashlib.sha256()
    for chunk in _read_chunks(stream):
        sha.update(chunk)
    return sha.hexdigest()


def digest_file(path: StrPath) -> str:
    with open(path, "rb") as stream:
        return digest_stream(stream)


class BlobReader(io.RawIOBase):
    """A blob being read. With ``verify`` the digest is checked when the end is reached, and
    on leaving a ``with`` block without an error (the unread rest is read to check it)."""

    def __init__(
        self, raw: IO[bytes], chunks: Iterator[bytes], digest: str, *, verify: bool, where: str
    ) -> None:
        super().__init__()
        self._raw = raw
        self._chunks = chunks
        self._digest = digest
        self._verify = verify
        self._where = where
        self._sha = hashlib.sha256()
        self._pending = memoryview(b"")
        self._at_end = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def readall(self) -> bytes:
        parts = []
        while self._fill():
            parts.append(bytes(self._pending))
            self._pending = memoryview(b"")
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self._verify and not self.closed:
                while self._fill():
                    self._pending = memoryview(b"")
        finally:
            self.close()

    def _fill(self) -> bool:
        """Make sure unread data is pending; False at the end of the blob."""
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._finish()
                return False
            self._sha.update(chunk)
            self._pending = memoryview(chunk)
        return True

    def _finish(self) -> None:
        if self._at_end:
            return
        self._at_end = True
        actual = self._sha.hexdigest()
        if self._verify and actual != self._digest:
            raise IntegrityError(f"{self._where} is corrupt: its content hashes to {actual}")


class ArtifactStore:
    """Blobs by SHA-256 under ``url``: a local folder or any fsspec URL."""

    def __init__(self, url: StrPath, *, encryption_key: str | None = None) -> None:
        self.url = os.fspath(url)
        self._encryption_key = encryption_key

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r}, encrypted={self._encryption_key is not None})"

    # -- writing ------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Blob:
        return self.put_stream(io.BytesIO(data))

    def put_file(self, path: StrPath) -> Blob:
        try:
            stream = open(path, "rb")  # noqa: SIM115 - closed below, not around put_stream's errors
        except FileNotFoundError as exc:
            raise NotFound(f"file {os.fspath(path)!r} does not exist", field="path") from exc
        except IsADirectoryError as exc:
            raise InvalidInput(
                f"{os.fspath(path)!r} is a folder, not a file", field="path"
            ) from exc
        with stream:
            return self.put_stream(stream)

    def put_stream(self, stream: IO[bytes]) -> Blob:
        fernet = self._fernet
        tmp = f"{self._root}/tmp/{uuid.uuid4().hex}"
        try:
            with self._open_temp(tmp) as out:
                blob = _copy_in(stream, out, fernet)
            self._commit(tmp, blob.digest)
        except BaseException:
            self._discard(tmp)
            raise
        return blob

    def put_folder(self, folder: StrPath) -> Blob:
        """Store every file under ``folder`` and return the blob of its manifest."""
        files = _list_folder(Path(folder))  # all checks first: a refused folder stores nothing
        entries = []
        for rel, full in files:
            blob = self.put_file(full)
            entries.append(ManifestEntry(path=rel, digest=blob.digest, size=blob.size))
        return self.put_bytes(Manifest(files=tuple(entries)).to_json())

    def delete(self, digest: str) -> None:
        path = self._blob_path(digest)
        try:
            if not self._fs.exists(path):
                raise FileNotFoundError(path)
            self._fs.rm_file(path)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in the artifact store") from exc

    # -- reading ------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        return bool(self._fs.exists(self._blob_path(digest)))

    def size(self, digest: str) -> int:
        """Size of the content (the plaintext, when encrypted)."""
        path = self._blob_path(digest)
        try:
            stored = int(self._fs.size(path))
            if self._fernet is None:
                return stored
            if stored < len(_MAGIC) + _LENGTH.size + _SIZE.size:
                raise IntegrityError(f"blob {digest} is truncated")
            with self._fs.open(path, "rb") as raw:
                raw.seek(stored - _SIZE.size)
                return int(_SIZE.unpack(raw.read(_SIZE.size))[0])
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} not found in the artifact store") from exc

    def open(self, digest: str, *, verify: bool = True) -> BlobReader:
        return self._open(digest, verify=verify, where=f"blob {check_digest(digest)}")

    def get_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        with self.open(digest, verify=verify) as reader:
            return reader.read()

    def copy_to(self, digest: str, dest_path: StrPath, *, verify: bool = True) -> Path:
        """Write the blob to the local file ``dest_path``, all at once or not at all."""
        dest = Path(dest_path)
        with self.open(digest, verify=verify) as reader:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "xb") as out:
                    shutil.copyfileobj(reader, out, CHUNK_SIZE)
                os.replace(tmp, dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return dest

    def read_manifest(self, digest: str) -> Manifest:
        data = self.get_bytes(digest)
        try:
            manifest = Manifest.model_validate_json(data)
        except ValidationError as exc:
            raise InvalidInput(f"blob {digest} is not a folder manifest", field="digest") from exc
        _check_manifest_paths(manifest)
        return manifest

    def get_folder(self, digest: str, dest: StrPath, *, verify: bool = True) -> Path:
        """Materialize a manifest as the folder ``dest``, all at once or not at all."""
        manifest = self.read_manifest(digest)
        dest = Path(dest)
        if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
            raise AlreadyExists(f"{dest} already exists and is not an empty folder", field="dest")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.tmp"
        staging.mkdir()
        try:
            for entry in manifest.files:
                self._materialize(entry, staging.joinpath(*entry.path.split("/")), verify=verify)
            os.replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return dest

    # -- internals ----------------------------------------------------------------------

    @cached_property
    def _fs_and_root(self) -> tuple[Any, str]:
        import fsspec  # type: ignore[import-untyped]  # here: loading a model never needs it

        fs, root = fsspec.core.url_to_fs(self.url)
        return fs, root.rstrip("/")

    @property
    def _fs(self) -> Any:
        return self._fs_and_root[0]

    @property
    def _root(self) -> str:
        return self._fs_and_root[1]

    @property
    def _is_local(self) -> bool:
        return "file" in self._fs.protocol

    @cached_property
    def _fernet(self) -> Fernet | None:
        if self._encryption_key is None:
            return None
        from cryptography.fernet import Fernet

        try:
            return Fernet(self._encryption_key)
        except (ValueError, TypeError):  # the message (and its chain) must not show the key
            raise InvalidInput(
                "encryption_key is not a Fernet key (32 url-safe base64-encoded bytes)",
                field="encryption_key",
            ) from None

    def _blob_path(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/blobs/{digest[:2]}/{digest[2:]}"

    @contextmanager
    def _open_temp(self, tmp: str) -> Iterator[IO[bytes]]:
        if not self._is_local:
            with self._fs.open(tmp, "wb") as out:
                yield out
            return
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "xb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())  # the rename must not publish a blob still in the page cache

    def _commit(self, tmp: str, digest: str) -> None:
        final = self._blob_path(digest)
        if self._fs.exists(final):
            self._discard(tmp)
        elif self._is_local:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)
        else:
            self._fs.mv(tmp, final)  # an object store PUT is atomic per object anyway

    def _discard(self, tmp: str) -> None:
        try:
            if self._is_local:
                os.remove(tmp)
            elif self._fs.exists(tmp):
                self._fs.rm_file(tmp)
        except FileNotFoundError:
            pass

    def _open(self, digest: str, *, verify: bool, where: str) -> BlobReader:
        path = self._blob_path(digest)
        fernet = self._fernet
        try:
            raw = self._fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"{where} not found in the artifact store") from exc
        chunks = _read_chunks(raw) if fernet is None else _decrypt_chunks(raw, fernet, where)
        return BlobReader(raw, chunks, digest, verify=verify, where=where)

    def _materialize(self, entry: ManifestEntry, target: Path, *, verify: bool) -> None:
        where = f"file {entry.path!r} (blob {entry.digest})"
        target.parent.mkdir(parents=True, exist_ok=True)
        reader = self._open(entry.digest, verify=verify, where=where)
        with reader, open(target, "xb") as out:
            shutil.copyfileobj(reader, out, CHUNK_SIZE)
            size = out.tell()
        if size != entry.size:
            raise IntegrityError(f"{where} has {size} bytes, the manifest says {entry.size}")


def _read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidInput("the stream must be opened in binary mode", field="stream")
        yield chunk


def _copy_in(stream: IO[bytes], out: IO[bytes], fernet: Fernet | None) -> Blob:
    sha = hashlib.sha256()
    size = 0
    if fernet is not None:
        out.write(_MAGIC)
    for chunk in _read_chunks(stream):
        sha.update(chunk)
        size += len(chunk)
        if fernet is None:
            out.write(chunk)
        else:
            token = fernet.encrypt(bytes(chunk))
            out.write(_LENGTH.pack(len(token)) + token)
    if fernet is not None:
        out.write(_LENGTH.pack(0) + _SIZE.pack(size))
    return Blob(sha.hexdigest(), size)


def _decrypt_chunks(raw: IO[bytes], fernet: Fernet, where: str) -> Iterator[bytes]:
    from cryptography.fernet import InvalidToken

    if raw.read(len(_MAGIC)) != _MAGIC:
        raise IntegrityError(f"{where} is not an encrypted Heron blob")
    size = 0
    while length := _LENGTH.unpack(_read_exact(raw, _LENGTH.size, where))[0]:
        if length > _MAX_TOKEN:
            raise IntegrityError(f"{where} is corrupt: a frame claims {length} bytes")
        try:
            chunk = fernet.decrypt(_read_exact(raw, length, where))
        except InvalidToken:
            raise IntegrityError(f"{where} cannot be decrypted: wrong key or tampered") from None
        size += len(chunk)
        yield chunk
    if _SIZE.unpack(_read_exact(raw, _SIZE.size, where))[0] != size or raw.read(1):
        raise IntegrityError(f"{where} is corrupt: its size trailer does not match")


def _read_exact(raw: IO[bytes], n: int, where: str) -> bytes:
    data = raw.read(n)
    if len(data) != n:
        raise IntegrityError(f"{where} is truncated")
    return data


def _list_folder(root: Path) -> list[tuple[str, Path]]:
    """The files under ``root`` as (manifest path, full path), refusing links and oddities."""
    if root.is_symlink():
        raise InvalidInput(f"{root} is a symbolic link; give the folder itself", field="folder")
    if not root.exists():
        raise NotFound(f"folder {str(root)!r} does not exist", field="folder")
    if not root.is_dir():
        raise InvalidInput(f"{str(root)!r} is not a folder", field="folder")
    found = []
    linked: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            info = full.lstat()
            mode = info.st_mode
            if stat.S_ISREG(mode) and info.st_nlink > 1:
                linked.setdefault((info.st_dev, info.st_ino), []).append((rel, info.st_nlink))
            if stat.S_ISLNK(mode):
                # A link can point outside the folder; storing its target would leak it.
                raise InvalidInput(f"{rel!r} in {root} is a symbolic link", field="folder")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise InvalidInput(f"{rel!r} in {root} is not a regular file", field="folder")
            _check_path_text(rel)
            found.append((rel, full))
    for links in linked.values():
        # Every name of a hard-linked file must be inside the folder, or it shares (and
        # would store) content of a file outside it.
        if len(links) < links[0][1]:
            raise InvalidInput(
                f"{links[0][0]!r} in {root} is a hard link to a file outside the folder",
                field="folder",
            )
    return sorted(found)


def _raise(exc: OSError) -> None:
    raise exc  # os.walk skips unreadable folders silently otherwise


def _check_path_text(rel: str) -> None:
    check_relative_path(rel, "path")
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"file name {rel!r} is not valid UTF-8", field="path") from None


def _check_manifest_paths(manifest: Manifest) -> None:
    """Refuse paths that would escape the folder, repeat, or put a file inside a file."""
    paths: set[str] = set()
    for entry in manifest.files:
        _check_path_text(entry.path)
        if "." in entry.path.split("/"):
            raise InvalidInput(f"manifest path {entry.path!r} has a '.' part", field="path")
        if entry.path in paths:
            raise InvalidInput(f"manifest path {entry.path!r} appears twice", field="path")
        paths.add(entry.path)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in paths:
                raise InvalidInput(f"manifest path {path!r} is inside a file", field="path")
