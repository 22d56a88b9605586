"""Hardened inputs: traversal in names and paths, model sources that are not digests,
links in uploaded folders, crafted manifests, tampered cached models, SSRF targets, and
secrets encrypted at rest. Each is a table of variants."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

import heron
from heron._api import API_PREFIX
from heron._artifacts import ArtifactStore
from heron._names import check_key, check_name, check_relative_path
from heron._security._secrets import SecretBox, mask
from heron._security._ssrf import check_outbound_url
from heron._server import create_app
from heron._services import Services
from heron._settings import Settings
from heron.testing import admin_token, serve_in_thread

TRAVERSAL_PATHS = {
    "parent": "../secret",
    "nested-parent": "a/../../secret",
    "trailing-parent": "a/..",
    "absolute": "/etc/passwd",
    "windows-drive": "C:\\Windows\\win.ini",
    "windows-drive-slash": "C:/Windows/win.ini",
    "backslash": "a\\..\\..\\secret",
    "nul": "model.pkl\x00.txt",
    "encoded-dotdot": "%2e%2e/secret",
    "encoded-slash": "..%2fsecret",
    "double-encoded": "%252e%252e%252fsecret",
    "triple-encoded": "%25252e%25252e/secret",
    "encoded-nul": "a%00b",
    "encoded-backslash": "..%5csecret",
    "encoded-absolute": "%2fetc%2fpasswd",
    "empty-part": "a//b",
    "empty": "",
    "newline": "a\nb",
    "unc": "\\\\server\\share",
}

BAD_NAMES = {
    "parent": "..",
    "slash": "a/b",
    "traversal": "../models",
    "encoded": "%2e%2e",
    "double-encoded": "%252e%252e",
    "backslash": "a\\b",
    "nul": "a\x00b",
    "absolute": "/etc",
    "newline": "a\nb",
    "rtl-override": "model\u202egpj",
    "zero-width": "mo\u200bdel",
    "leading-dot-dot": "..hidden",
    "url": "file:///etc/passwd",
    "too-long": "m" * 201,
}

NOT_DIGESTS = {
    "path": "/etc/passwd",
    "file-url": "file:///etc/passwd",
    "file-url-host": "file://localhost/etc/passwd",
    "relative": "../../artifacts/blobs/ab/cd",
    "s3-url": "s3://bucket/model",
    "http-url": "http://169.254.169.254/latest/meta-data",
    "uppercase": "A" * 64,
    "short": "a" * 63,
    "long": "a" * 65,
    "trailing-newline": "a" * 64 + "\n",
    "traversal-suffix": "a" * 64 + "/../x",
    "home": "~/.ssh/id_rsa",
    "empty": "",
}


@pytest.mark.parametrize("path", list(TRAVERSAL_PATHS.values()), ids=list(TRAVERSAL_PATHS))
def test_relative_paths_refuse_traversal(path: str) -> None:
    with pytest.raises(heron.InvalidInput):
        check_relative_path(path)


@pytest.mark.parametrize("name", list(BAD_NAMES.values()), ids=list(BAD_NAMES))
def test_names_refuse_traversal_and_tricks(name: str) -> None:
    with pytest.raises(heron.InvalidInput):
        check_name(name)
    with pytest.raises(heron.InvalidInput):
        check_key(name if "/" not in name else name.replace("/", "/../"))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    s = Services(settings)
    yield s
    s.close()


@pytest.fixture
def api(services: Services) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {admin_token(services)}"}
    with (
        serve_in_thread(create_app(services)) as url,
        httpx.Client(base_url=url + API_PREFIX, headers=headers) as http,
    ):
        yield http


@pytest.mark.parametrize("source", list(NOT_DIGESTS.values()), ids=list(NOT_DIGESTS))
def test_model_sources_are_digests_never_paths_or_urls(
    services: Services, api: httpx.Client, source: str
) -> None:
    response = api.post("/models/m/versions", json={"source": source, "flavor": "python"})
    assert response.status_code == 422, response.text
    with pytest.raises(heron.InvalidInput):
        services.registry.create_model_version("m", source=source, flavor="python")
    assert services.registry.list_registered_models().items == []


@pytest.mark.parametrize("digest", list(NOT_DIGESTS.values()), ids=list(NOT_DIGESTS))
def test_artifact_and_dataset_digests_are_checked(
    services: Services, api: httpx.Client, digest: str
) -> None:
    run = services.tracking.create_run("e")
    recorded = api.post(
        f"/runs/{run.id}/artifacts", json={"path": "weights", "digest": digest, "size": 1}
    )
    assert recorded.status_code == 422
    dataset = api.post(
        "/datasets/d/versions",
        json={
            "digest": "b" * 64,
            "columns": [],
            "row_count": 0,
            "profile": {},
            "data_digest": digest,
        },
    )
    assert dataset.status_code in (404, 422)
    assert services.tracking.list_artifacts(run.id) == []


@pytest.mark.parametrize(
    "path",
    [p for p in TRAVERSAL_PATHS.values() if p],
    ids=[k for k, p in TRAVERSAL_PATHS.items() if p],
)
def test_artifact_paths_refuse_traversal_over_http(
    services: Services, api: httpx.Client, path: str
) -> None:
    run = services.tracking.create_run("e")
    digest = services.artifacts.put_bytes(b"x").digest
    response = api.post(
        f"/runs/{run.id}/artifacts", json={"path": path, "digest": digest, "size": 1}
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "path"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/models/..%2f..%2fetc%2fpasswd",
        "/models/%2e%2e",
        "/models/..%252f..%252fetc",
        "/experiments/..%5c..%5cwin.ini",
        "/runs/..%2f..%2f/artifacts",
        "/blobs/..%2f..%2fetc%2fpasswd",
        "/blobs/%2e%2e%2f" + "a" * 58,
    ],
    ids=["slash", "dotdot", "double", "backslash", "run", "blob", "blob-prefixed"],
)
def test_encoded_traversal_in_urls_reaches_no_file(api: httpx.Client, raw_path: str) -> None:
    response = api.get(httpx.URL(api.base_url.raw_path.decode() + raw_path.lstrip("/")))
    assert response.status_code in (404, 422), response.text
    assert "root:" not in response.text


# --- folders and manifests ----------------------------------------------------------------


def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights")
    return folder


def test_symlinks_in_uploaded_folders_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    (tmp_path / "secret").write_text("s3cret")
    cases = {
        "file-outside": lambda f: os.symlink(tmp_path / "secret", f / "link"),
        "dir-outside": lambda f: os.symlink(tmp_path, f / "up"),
        "relative-outside": lambda f: os.symlink("../secret", f / "rel"),
        "inside": lambda f: os.symlink("model.bin", f / "alias"),
    }
    for name, make in cases.items():
        folder = model_folder(tmp_path / name)
        make(folder)
        with pytest.raises(heron.InvalidInput):
            store.put_folder(folder)
    linked_root = tmp_path / "linked-root"
    os.symlink(model_folder(tmp_path / "real"), linked_root)
    with pytest.raises(heron.InvalidInput):
        store.put_folder(linked_root)


def test_hard_links_to_files_outside_the_folder_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    (tmp_path / "secret").write_text("s3cret")
    folder = model_folder(tmp_path)
    os.link(tmp_path / "secret", folder / "innocent.txt")
    with pytest.raises(heron.InvalidInput, match="hard link"):
        store.put_folder(folder)
    os.unlink(folder / "innocent.txt")
    os.link(folder / "model.bin", folder / "copy.bin")  # both names inside: fine
    manifest = store.read_manifest(store.put_folder(folder).digest)
    assert {e.path for e in manifest.files} == {"model.bin", "copy.bin"}


@pytest.mark.parametrize(
    "path",
    ["../evil", "/abs", "a/../../evil", "a\\..\\evil", "x\x00y", ".", "a/./b", "%2e%2e/evil"],
    ids=["parent", "absolute", "nested", "backslash", "nul", "dot", "inner-dot", "encoded"],
)
def test_crafted_manifests_cannot_write_outside_the_folder(tmp_path: Path, path: str) -> None:
    store = ArtifactStore(tmp_path / "store")
    blob = store.put_bytes(b"payload")
    manifest = {"files": [{"path": path, "digest": blob.digest, "size": blob.size}]}
    digest = store.put_bytes(json.dumps(manifest).encode()).digest
    with pytest.raises(heron.InvalidInput):
        store.get_folder(digest, tmp_path / "out" / "model")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "model").exists()


# --- models are verified whenever they are loaded --------------------------------------------


class Doubler:
    def predict(self, data: Any) -> Any:
        return [2 * row[0] for row in data.to_numpy().tolist()]


TAMPER_CACHE = {
    "edit-model": lambda f: (f / "model.pkl").write_bytes(b"evil pickle"),
    "edit-model-and-manifest": lambda f: _rewrite_with_manifest(f),
    "add-file": lambda f: (f / "extra.py").write_text("import os"),
    "remove-file": lambda f: (f / "model.pkl").unlink(),
}


def _rewrite_with_manifest(folder: Path) -> None:
    from heron._models import read_manifest
    from heron._models._format import _write_manifest, file_digests

    (folder / "model.pkl").write_bytes(b"evil pickle")
    manifest = read_manifest(folder)
    manifest.files = file_digests(folder)  # the local manifest now agrees with the edit
    _write_manifest(folder, manifest)


@pytest.mark.parametrize("case", list(TAMPER_CACHE), ids=list(TAMPER_CACHE))
def test_tampered_cached_model_is_refused_naming_the_file(client: heron.Client, case: str) -> None:
    mv = client.log_model(Doubler(), "doubler", flavor="python")
    first = client.load_model("models:/doubler/1")
    assert list(first.predict({"x": [1, 2]})) == [2, 4]
    folder = client.model_folder(mv)
    for path in folder.rglob("*"):
        os.chmod(path, stat.S_IRWXU)
    TAMPER_CACHE[case](folder)
    with pytest.raises(heron.IntegrityError) as info:
        client.load_model("models:/doubler/1")
    # The first file (by path) that differs from the store's copy is named.
    expected = {"add-file": "extra.py", "edit-model-and-manifest": "heron-model.yaml"}
    name = expected.get(case, "model.pkl")
    assert info.value.field == name and name in info.value.message


def test_pickle_can_be_refused_altogether(settings: Settings) -> None:
    with heron.Client(settings=settings) as trusting:
        trusting.log_model(Doubler(), "doubler", flavor="python")
    strict = heron.Client(settings=settings.with_(allow_pickle=False))
    with strict, pytest.raises(heron.PermissionDenied):
        strict.load_model("models:/doubler/1")


# --- SSRF guard for webhook targets --------------------------------------------------------


def fake_dns(host: str, port: int) -> list[str]:
    table = {
        "hooks.example.com": ["93.184.216.34"],
        "localhost": ["127.0.0.1", "::1"],
        "internal.corp": ["10.1.2.3"],
        "rebind.example": ["93.184.216.34", "127.0.0.1"],
    }
    if host in table:
        return table[host]
    import socket

    return [info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]


REFUSED_URLS = {
    "loopback": "http://127.0.0.1/hook",
    "loopback-other": "http://127.1.2.3:8080/hook",
    "localhost": "http://localhost/hook",
    "localhost-dot": "http://localhost./hook",
    "ipv6-loopback": "http://[::1]/hook",
    "ipv4-mapped": "http://[::ffff:127.0.0.1]/hook",
    "decimal": "http://2130706433/hook",
    "octal": "http://0177.0.0.1/hook",
    "hex": "http://0x7f.0.0.1/hook",
    "short": "http://127.1/hook",
    "unspecified": "http://0.0.0.0/hook",
    "metadata-aws": "http://169.254.169.254/latest/meta-data/",
    "metadata-gcp-name": "http://metadata.google.internal/computeMetadata/v1/",
    "metadata-ecs": "http://169.254.170.2/v2/credentials",
    "metadata-ipv6": "http://[fd00:ec2::254]/latest",
    "link-local": "http://169.254.1.1/hook",
    "private-10": "http://10.0.0.5/hook",
    "private-192": "https://192.168.1.1/hook",
    "private-name": "https://internal.corp/hook",
    "rebinding-mix": "https://rebind.example/hook",
    "file": "file:///etc/passwd",
    "gopher": "gopher://hooks.example.com/",
    "ftp": "ftp://hooks.example.com/x",
    "no-host": "http:///hook",
    "userinfo-trick": "http://hooks.example.com@127.0.0.1/hook",
    "space": "http://hooks.example.com /hook",
    "multicast": "http://224.0.0.1/hook",
    "broadcast": "http://255.255.255.255/hook",
}


@pytest.mark.parametrize("url", list(REFUSED_URLS.values()), ids=list(REFUSED_URLS))
def test_webhook_targets_on_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(heron.InvalidInput) as info:
        check_outbound_url(url, resolve=fake_dns)
    assert info.value.field == "url"


def test_public_targets_pass_and_private_ones_when_allowed() -> None:
    assert [
        str(a) for a in check_outbound_url("https://hooks.example.com/x?token=t", resolve=fake_dns)
    ] == ["93.184.216.34"]
    assert check_outbound_url("http://10.0.0.5/hook", allow_private=True, resolve=fake_dns)
    assert check_outbound_url("http://localhost/hook", allow_private=True, resolve=fake_dns)
    with pytest.raises(heron.InvalidInput):  # metadata stays refused
        check_outbound_url("http://169.254.169.254/", allow_private=True, resolve=fake_dns)


# --- secrets in the database ------------------------------------------------------------------


def test_secrets_round_trip_and_never_show_the_key(tmp_path: Path) -> None:
    box = SecretBox.from_settings(Settings(home=tmp_path))
    sealed = box.encrypt("https://hooks.example.com/T0KEN")
    assert sealed.startswith("enc:v1:") and "T0KEN" not in sealed
    assert box.decrypt(sealed) == "https://hooks.example.com/T0KEN"
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_settings(Settings(home=tmp_path)).decrypt(sealed).endswith("T0KEN")
    assert mask("smtp-password-123") == "smtp****" and mask("short") == "****"


def test_secret_key_rotation_and_wrong_keys(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox(old).encrypt("p@ss")
    both = SecretBox.from_settings(Settings(home=tmp_path, secret_key=f"{new},{old}"))
    rotated = both.rotate(sealed)
    assert SecretBox(new).decrypt(rotated) == "p@ss"
    with pytest.raises(heron.IntegrityError):
        SecretBox(new).decrypt(sealed)
    with pytest.raises(heron.IntegrityError):
        SecretBox(old).decrypt(sealed[:-4] + "AAAA")
    with pytest.raises(heron.InvalidInput) as info:
        SecretBox("not-a-key").encrypt("x")
    assert "not-a-key" not in info.value.message
    with pytest.raises(heron.InvalidInput):
        SecretBox(old).decrypt("plain text")
