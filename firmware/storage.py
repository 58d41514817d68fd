"""Content-addressed firmware files: ``sha256/ab/cd/<hash>`` through Django's storage API.

Why content-addressed: identical bytes are stored once, whichever tenant or upload
brings them, and a file's name proves what it holds, so a download can be checked
against the name. Why the storage API: the file system is the default
(``STORAGES["firmware"]``, under ``COT_FIRMWARE_DIR``), an S3-compatible store through
django-storages is an option (docs/operations.md#firmware-storage), and this module is
the only code that knows which.

Files here are never served by URL; the firmware views stream them after their access
checks. This module knows nothing about rows: the caller decides when no row uses a
blob any more and deletes it (``delete_blob``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils._os import safe_makedirs  # type: ignore[attr-defined]  # not in the stubs

CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobMismatch(ValueError):
    """The bytes handed to ``store_blob`` do not hash to the SHA-256 they were to be stored under."""


def blob_name(sha256: str) -> str:
    """The storage name of the blob with this SHA-256: ``sha256/ab/cd/<64 hex>``.

    Two levels of two hex digits keep directories small (65,536 leaves) on a file system.
    Only lowercase hex is accepted, so one hash never has two names (ValueError otherwise).
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"Not a lowercase hex SHA-256: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def firmware_storage() -> Storage:
    """The configured firmware storage (``STORAGES["firmware"]``), looked up per call so overrides apply."""
    return storages["firmware"]


class FirmwareFileSystemStorage(FileSystemStorage):
    """The file system backend for firmware: a blob appears whole or not at all, and never by URL.

    Django's ``FileSystemStorage`` writes straight into the final name, so a concurrent
    reader (or ``exists()``) could see a half-written file, and a crash or a refused
    upload would leave a truncated file under a hash it does not match. Here the bytes
    go to a hidden temporary file in the same directory first and are then published
    with ``os.link``, which never replaces an existing file; if the name is taken by
    then, the storage API's usual renaming applies (``store_blob`` undoes it).
    Needs a file system with hard links (any local POSIX one; NFS too).
    """

    def _save(self, name: str, content: Any) -> str:
        full_path = self.path(name)
        directory = os.path.dirname(full_path)
        if self.directory_permissions_mode is not None:
            safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
        else:
            os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".incoming-", delete=False) as incoming:
            try:
                for chunk in content.chunks(CHUNK):
                    incoming.write(chunk)
                incoming.flush()
                os.fsync(incoming.fileno())
            except BaseException:
                os.unlink(incoming.name)
                raise
        try:
            if self.file_permissions_mode is not None:
                os.chmod(incoming.name, self.file_permissions_mode)
            while True:
                try:
                    os.link(incoming.name, full_path)
                except FileExistsError:
                    name = self.get_available_name(name)
                    full_path = self.path(name)
                else:
                    break
        finally:
            os.unlink(incoming.name)
        return str(name).replace("\\", "/")

    def url(self, name: str | None) -> str:
        """Refused: firmware is streamed by the app after access checks, never served by URL."""
        raise NotImplementedError("Firmware files are not served by URL; stream them through the app.")


class _VerifyingFile(File):  # type: ignore[type-arg,unused-ignore]
    """A read-only view of a file that hashes what is read and refuses a mismatch at its end.

    Raising at the end of the data, while the storage is still writing, stops the write
    before it is published (``FirmwareFileSystemStorage``; an S3 upload is aborted).
    Seeking back to 0 starts the hash afresh; any other seek makes the stream
    unverifiable, and ``store_blob`` then checks the stored copy instead.
    """

    def __init__(self, file: IO[bytes], sha256: str) -> None:
        super().__init__(file, name=getattr(file, "name", None) or sha256)
        self._source = file
        self._expected = sha256
        self._digest: Any = hashlib.sha256()
        self.verified = False

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            if self._digest is not None:
                self._digest.update(data)
        elif size != 0 and self._digest is not None:
            if self._digest.hexdigest() != self._expected:
                raise BlobMismatch(f"The bytes do not hash to {self._expected}.")
            self.verified = True
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._source.seek(offset, whence)
        self._digest = hashlib.sha256() if position == 0 else None
        self.verified = False
        return position


def store_blob(file: File | IO[bytes], sha256: str) -> bool:
    """Store ``file`` (already on disk, e.g. an upload's temporary file) under its hash; True if newly stored.

    Identical bytes are stored once: when the blob exists the copy is dropped. The file is
    copied in chunks, never read whole, and never moved (the caller still owns it). The
    bytes must hash to ``sha256`` (BlobMismatch otherwise, and nothing is stored) — the
    name is the promise downloads are checked against.

    Two uploads of the same bytes may both find the blob missing and both save. The
    storage API never overwrites; it stores the second under another name
    (``<hash>_abc1234``), which is deleted here at once, so there is still one file
    and the second caller gets False.
    """
    name = blob_name(sha256)
    storage = firmware_storage()
    # No shortcut when the blob exists: blobs are shared by every tenant, and an upload
    # answered faster because its bytes are known would tell one tenant what another holds.
    # Every upload is written in full; a duplicate is then dropped below.
    source = file.file if isinstance(file, File) else file
    if source is None:
        raise ValueError("The file is closed.")
    content = _VerifyingFile(source, sha256)
    content.seek(0)
    saved = storage.save(name, content)
    if saved != name:
        storage.delete(saved)
        return False
    if not content.verified:
        digest = hashlib.sha256()
        with storage.open(name, "rb") as stored:
            for chunk in stored.chunks(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            storage.delete(name)
            raise BlobMismatch(f"The bytes do not hash to {sha256}.")
    return True


def open_blob(sha256: str) -> File:
    """The stored blob, opened for binary reading (stream it in chunks; close it when done)."""
    return firmware_storage().open(blob_name(sha256), "rb")


def blob_exists(sha256: str) -> bool:
    """Whether a blob with this SHA-256 is stored."""
    return firmware_storage().exists(blob_name(sha256))


def delete_blob(sha256: str) -> None:
    """Delete the blob (no error if it is gone); the caller makes sure no row still uses it."""
    firmware_storage().delete(blob_name(sha256))
