"""Content-addressed firmware storage (firmware.storage): one file per distinct content, never renamed copies."""

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.test import override_settings

from firmware import storage
from firmware.storage import BlobMismatch, blob_exists, blob_name, delete_blob, open_blob, store_blob

DATA = b"\x7fELF firmware image " * 5000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def firmware_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "firmware"
    stores = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "firmware": {"BACKEND": "firmware.storage.FirmwareFileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    with override_settings(STORAGES=stores):
        yield root


def on_disk(data: bytes, tmp_path: Path, name: str = "upload.bin") -> File:
    path = tmp_path / name
    path.write_bytes(data)
    return File(path.open("rb"))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_blob_name_is_sha256_fanned_out_and_validated():
    assert blob_name(SHA) == f"sha256/{SHA[:2]}/{SHA[2:4]}/{SHA}"
    for bad in [SHA.upper(), SHA[:-1], SHA + "0", "g" * 64, "../" + SHA[3:], "", None]:
        with pytest.raises(ValueError):
            blob_name(bad)  # type: ignore[arg-type]


def test_settings_give_a_file_system_storage_without_urls(settings):
    backend = settings.STORAGES["firmware"]
    assert backend["BACKEND"] == "firmware.storage.FirmwareFileSystemStorage"
    assert isinstance(storage.firmware_storage(), FileSystemStorage)
    with pytest.raises(NotImplementedError):
        storage.firmware_storage().url(blob_name(SHA))


def test_storing_identical_bytes_twice_keeps_one_file(firmware_dir, tmp_path):
    with on_disk(DATA, tmp_path) as first:
        assert store_blob(first, SHA) is True
    with on_disk(DATA, tmp_path, "again.bin") as second:
        assert store_blob(second, SHA) is False
    assert files_under(firmware_dir) == [blob_name(SHA)]
    assert (firmware_dir / blob_name(SHA)).read_bytes() == DATA
    assert (tmp_path / "again.bin").exists()  # copied, not moved: the caller still owns its file


def test_store_copies_in_chunks_never_whole(tmp_path):
    reads: list[int] = []
    raw = io.BytesIO(DATA * 20)
    original = raw.read

    def spying_read(size: int | None = -1) -> bytes:
        reads.append(-1 if size is None else size)
        return original(size)

    raw.read = spying_read  # type: ignore[method-assign]
    assert store_blob(File(raw), hashlib.sha256(DATA * 20).hexdigest())
    assert reads and all(0 < size <= storage.CHUNK for size in reads)


def test_concurrent_second_store_leaves_no_renamed_duplicate(firmware_dir, tmp_path):
    with on_disk(DATA, tmp_path) as first:
        assert store_blob(first, SHA)
    # The second upload checked before the first finished: exists() said no.
    real_exists = FileSystemStorage.exists
    calls: list[str] = []

    def stale_exists(self: FileSystemStorage, name: str) -> bool:
        calls.append(name)
        return False if len(calls) == 1 else real_exists(self, name)  # only store_blob's own check is stale

    with on_disk(DATA, tmp_path, "racer.bin") as racer, mock.patch.object(FileSystemStorage, "exists", stale_exists):
        assert store_blob(racer, SHA) is False
    assert calls[0] == blob_name(SHA) and len(calls) > 1  # the storage then found the name taken
    assert files_under(firmware_dir) == [blob_name(SHA)]


def test_publish_race_at_link_time_leaves_no_duplicate(firmware_dir, tmp_path):
    """The other writer publishes between get_available_name and our link: still one file."""
    fs = storage.firmware_storage()
    real_link = os.link

    def other_writer_first(src: str, dst: str) -> None:
        if not os.path.exists(dst) and dst.endswith(SHA):
            Path(dst).write_bytes(DATA)
        real_link(src, dst)

    with on_disk(DATA, tmp_path) as upload, mock.patch("firmware.storage.os.link", other_writer_first):
        assert store_blob(upload, SHA) is False
    assert files_under(firmware_dir) == [blob_name(SHA)]
    assert fs.exists(blob_name(SHA))


def test_mismatching_bytes_are_refused_and_leave_nothing(firmware_dir, tmp_path):
    with on_disk(DATA + b"tampered", tmp_path) as upload, pytest.raises(BlobMismatch):
        store_blob(upload, SHA)
    assert not blob_exists(SHA)
    assert files_under(firmware_dir) == []  # no truncated blob, no temporary file


def test_open_and_delete(firmware_dir, tmp_path):
    assert not blob_exists(SHA)
    with on_disk(DATA, tmp_path) as upload:
        store_blob(upload, SHA)
    assert blob_exists(SHA)
    with open_blob(SHA) as blob:
        assert b"".join(blob.chunks()) == DATA
    delete_blob(SHA)
    assert not blob_exists(SHA)
    delete_blob(SHA)  # gone already: no error
    assert files_under(firmware_dir) == []
