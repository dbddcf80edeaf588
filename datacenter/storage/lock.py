"""Inter-process locks on a storage, with ``flock`` on files in its state folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from types import TracebackType

from datacenter.errors import DataCenterError
from datacenter.storage import fs, layout


class LockHeldError(DataCenterError, RuntimeError):
    """Another process holds the lock; the message names it."""


class StorageLock:
    """An exclusive lock on one file, re-entrant within this object.

    ``flock`` locks belong to an open file description, so two objects in
    one process exclude each other just like two processes do. The lock
    file is never unlinked by its holder while others may wait on it;
    after acquiring, the holder checks that the path still names the inode
    it locked (the storage may have been relocated meanwhile) and retries.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0
        self._mutex = threading.RLock()

    def acquire(self, blocking: bool = True) -> None:
        self._mutex.acquire()
        if self._depth:
            self._depth += 1
            return
        try:
            self._fd = self._lock_current_inode(blocking)
        except BaseException:
            self._mutex.release()
            raise
        self._depth = 1

    def _lock_current_inode(self, blocking: bool) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                         layout.PRIVATE_FILE)
            try:
                flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
                try:
                    fcntl.flock(fd, flags)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise LockHeldError(self._describe_holder(fd)) from None
                    raise
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                        self._record_holder(fd)
                        return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    def _record_holder(self, fd: int) -> None:
        # Informational only (who holds it), so it need not be durable.
        fs.rewrite_fd(fd, f"{os.getpid()}\n".encode())

    def _describe_holder(self, fd: int) -> str:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        holder = f"process {pid}" if pid.isdigit() else "another process"
        return f"{self.path} is locked by {holder}"

    @staticmethod
    def holder(path: str) -> str | None:
        """Who holds the lock at *path* (``"process N"``), or None; takes nothing."""
        pid = StorageLock.holder_pid(path)
        if pid is None:
            return None
        return f"process {pid}" if pid else "another process"

    @staticmethod
    def holder_pid(path: str) -> int | None:
        """The process holding the lock at *path* (0: unknown), or None when nobody does.

        A probe must not leave its own pid behind as the holder, so it never
        writes: it tries a shared lock, which fails only while someone holds
        the exclusive one, and reads their note. A holder in this very
        process counts too (flock locks belong to open files, not processes).
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(pid) if pid.isdigit() else 0
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if not self._depth:
            raise RuntimeError(f"{self.path}: release of a lock not held")
        self._depth -= 1
        if not self._depth and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._mutex.release()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def __enter__(self) -> StorageLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def service_holder(storage: str, *, others_only: bool = False) -> str | None:
    """``"process N"`` while a service (``datacenter serve``) holds *storage*, else None.

    Read from ``.datacenter/serve.lock``, which only a live process can hold.
    With *others_only* a service of this very process does not count: it
    follows a move its own process makes (it subscribes to the storage).
    """
    path = layout.state_path(os.path.abspath(storage), layout.SERVICE_LOCK)
    pid = StorageLock.holder_pid(path)
    if pid is None or (others_only and pid == os.getpid()):
        return None
    return f"process {pid}" if pid else "another process"
