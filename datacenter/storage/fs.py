"""The one module that changes the filesystem.

Every rename, replace, unlink, durable write, fsync, mkdir and tree removal
of the package happens here, and nowhere else. Two things follow from that:

* durability has one implementation: data is fsynced before it is renamed
  into place, and the directory is fsynced after its entries change, so a
  power cut leaves either the old state or the new one;
* every step is an injection point named ``fs.<function>`` for the fault
  harness (:mod:`datacenter.testing.faults`), so tests can fail or kill the process
  at each single step and prove that recovery copes.

``shutil.move`` is never used: across filesystems it copies onto the final
name with no temporary file and no fsync, so a crash leaves a torn file
under a name that looks complete.

Nothing is reached through a link planted in the storage: every file the
package opens in it is opened with ``O_NOFOLLOW`` (:func:`open_own`), and a
file it appends to or reads as its own must have no second name
(:func:`planted`), since that name could be outside. Files and folders are
created with the modes of :mod:`.layout` (the umask can only take bits away).

Longer than 400 lines because it is the one module that changes the disk:
the rule "no other module renames, unlinks, fsyncs or writes" (checked by
``tests/test_fs.py``) and the crash enumeration's list of steps are only as
simple as this module is whole. Its sections (primitives, new files,
copying and moving, links, modes) are each short.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import io
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

from datacenter.errors import DataCenterError
from datacenter.injection import injection_point
from datacenter.storage import layout

_F = TypeVar("_F", bound=Callable[..., Any])

#: Prefix of every temporary name this module creates; readers skip them.
TEMP_PREFIX = ".dc-tmp-"
_COPY_CHUNK = 1 << 20
#: Errors of ``link()`` that mean "no hard link here": across devices, or a
#: filesystem without hard links. Anything else is a real failure.
NO_HARD_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK})
#: Threads that fsync the files of a batch together (see :func:`sync_all`).
SYNC_THREADS = 16


class PlantedLinkError(DataCenterError, OSError):
    """A path of the storage is a symbolic link or a foreign hard link: it is left alone."""

    @classmethod
    def at(cls, path: str, reason: str) -> PlantedLinkError:
        return cls(errno.ELOOP, f"{reason}; left alone, never followed", path)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def _point(func: _F) -> _F:
    return injection_point("fs." + func.__name__)(func)


def temp_name(directory: str, hint: str = "") -> str:
    """A fresh hidden name in *directory*, for staging bytes beside their home."""
    return os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}{hint}")


# -- primitives ------------------------------------------------------------


@_point
def fsync(fd: int) -> None:
    """Flush a file's data and metadata to the device."""
    os.fsync(fd)


@_point
def fsync_dir(path: str) -> None:
    """Make the entries of directory *path* durable (new, renamed, removed)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@_point
def sync_all(files: Iterable[str], folders: Iterable[str] = ()) -> None:
    """Make many *files* durable, and the entries of *folders*: one step for a batch.

    Every file and every folder is fsynced, as one fsync each would, but
    the fsyncs are issued together from a few threads: the filesystem's
    journal commits those in flight in one flush instead of one each
    (measured on ext4 with 64 small files: a third to a quarter of the time
    of one fsync after the other). Nothing is changed by an fsync; this is
    one step for the fault harness. Paths are opened without following a
    link. The first error is raised once every fsync has been tried: then
    nothing is known to be durable that was not before, and the caller's
    commit must not go on.
    """
    paths = [(path, False) for path in files] + [(folder, True) for folder in folders]
    if len(paths) <= 1:
        for path, folder in paths:
            _fsync_path(path, folder)
        return
    pool = _sync_pool()
    futures = [pool.submit(_fsync_path, path, folder) for path, folder in paths]
    errors = [future.exception() for future in futures]
    first = next((error for error in errors if error is not None), None)
    if first is not None:
        raise first


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _sync_pool() -> ThreadPoolExecutor:
    """The process's fsync threads, started once (a forked child starts its own)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="fsync"))
    return _pool[1]


def _fsync_path(path: str, folder: bool) -> None:
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if folder else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@_point
def write(fd: int, data: bytes | memoryview) -> int:
    """Write all of *data* to *fd*; returns the number of bytes written."""
    view = memoryview(data)
    total = 0
    while total < len(view):
        total += os.write(fd, view[total:])
    return total


@_point
def mkdir(path: str, sync: bool = True) -> bool:
    """Create directory *path* durably; False when it already was there.

    ``sync=False`` leaves the fsync of its parent to the caller (one for
    many folders: see :func:`sync_all`).
    """
    try:
        os.mkdir(path, layout.folder_mode(path))
    except FileExistsError:
        if not os.path.isdir(path):
            raise NotADirectoryError(
                errno.ENOTDIR, "exists and is not a directory", path
            ) from None
        return False
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))
    return True


def makedirs(path: str) -> None:
    """Create *path* and its missing parents, each one durably."""
    path = os.path.abspath(path)
    missing: list[str] = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        mkdir(directory)


@_point
def replace(src: str, dst: str, sync: bool = True) -> None:
    """Rename *src* to *dst*, replacing a file there; both directories durable.

    ``sync=False`` leaves the directory fsyncs to the caller: a journal
    group fsyncs every folder it touched once, before it forgets its intent.
    """
    os.replace(src, dst)
    if sync:
        _fsync_parents(src, dst)


@_point
def rename_noreplace(src: str, dst: str, sync: bool = True) -> None:
    """Rename *src* to *dst*, refusing with FileExistsError if *dst* exists.

    A regular file is hard-linked then unlinked, so the check and the rename
    are one atomic step; a crash between the two leaves two names for the
    same inode, never a lost file. Directories cannot be hard-linked: the
    check precedes the rename, which the storage lock makes safe.
    """
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "destination exists", dst)
    if stat.S_ISREG(os.lstat(src).st_mode):
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in NO_HARD_LINK - {errno.EXDEV}:
                raise
            os.rename(src, dst)  # the filesystem has no hard links
        else:
            os.unlink(src)
    else:
        os.rename(src, dst)
    if sync:
        _fsync_parents(src, dst)


@_point
def rename_in(src: str, dst: str) -> None:
    """Rename file *src* to *dst* in one step that never replaces (FileExistsError).

    Unlike :func:`rename_noreplace` (a hard link, then an unlink), the new
    name appears by a rename, which a watcher sees as a file moved in,
    complete: an upload of the console takes this way into the storage's
    root. Linux's ``renameat2(RENAME_NOREPLACE)`` does it; where that is
    missing (another system, a filesystem without it) the hard link's way.
    """
    result = _renameat2(src, dst)
    if result is None:
        rename_noreplace(src, dst)
        return
    if result:
        raise OSError(result, os.strerror(result), dst)
    _fsync_parents(src, dst)


_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def _renameat2(src: str, dst: str) -> int | None:
    """0 when renamed, the errno when refused; None when there is no renameat2 here."""
    function = getattr(_libc(), "renameat2", None)
    if function is None:
        return None
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                _RENAME_NOREPLACE) == 0:
        return 0
    code = ctypes.get_errno()
    return None if code in (errno.ENOSYS, errno.EINVAL) else code


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@_point
def link(src: str, dst: str, sync: bool = True) -> None:
    """Give file *src* a second name *dst* (same filesystem), durably."""
    os.link(src, dst, follow_symlinks=False)
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(dst)))


@_point
def unlink(path: str, missing_ok: bool = False, sync: bool = True) -> None:
    """Remove file *path* durably (``sync=False``: the caller fsyncs the folder)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise
        return
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


@_point
def rmdir(path: str, sync: bool = True) -> None:
    """Remove the empty directory *path* durably."""
    os.rmdir(path)
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


@_point
def rmtree(path: str, sync: bool = True) -> None:
    """Remove *path* and everything below it, durably; absent is fine.

    Symlinks inside are removed, never followed.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


@_point
def append(path: str, data: bytes) -> None:
    """Append *data* to *path* (created if missing), without fsync.

    For the log: it tells what happened, the journal and the ledger are the
    record, and an fsync per log line would cost more than the work logged.
    """
    fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, layout.file_mode(path))
    try:
        write(fd, data)
    finally:
        os.close(fd)


@_point
def truncate(path: str, size: int) -> None:
    """Cut file *path* back to *size* bytes, durably."""
    fd = open_own(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        fsync(fd)
    finally:
        os.close(fd)


@_point
def rewrite_fd(fd: int, data: bytes) -> None:
    """Make the open file *fd* hold exactly *data* (not durable: for lock notes)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


# -- writing new files -----------------------------------------------------


class _FaultAwareRaw(io.RawIOBase):
    """A raw file whose writes pass the ``fs.write`` injection point."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def write(self, data: Any) -> int:
        return write(self.fd, data)

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self.fd)
            finally:
                super().close()


def open_new(path: str, append: bool = False,
             mode: int = layout.SHARED_FILE) -> io.BufferedWriter:
    """A buffered writer on the new file *path* whose writes pass ``fs.write``.

    The caller fsyncs it (``fsync(handle.raw.fd)``) before relying on it.
    *append* opens the storage's own file *path* (created if missing) to add
    to it. The default *mode* is for data (see :func:`layout.file_mode`).
    """
    flags = os.O_WRONLY | os.O_CREAT
    flags |= os.O_APPEND if append else os.O_EXCL
    fd = open_own(path, flags, mode)
    return io.BufferedWriter(_FaultAwareRaw(fd), buffer_size=_COPY_CHUNK)


def _sync_and_close(handle: IO[Any]) -> None:
    handle.flush()
    raw = handle.buffer.raw if isinstance(handle, io.TextIOWrapper) else handle.raw  # type: ignore[attr-defined]
    fsync(raw.fd)
    handle.close()


@contextlib.contextmanager
def atomic_writer(
    path: str, *, text: bool = False, backup: bool = False, sync: bool = True,
    with_folders: Sequence[str] = (),
) -> Iterator[IO[Any]]:
    """Write a new version of *path*: readers see the old file or the new one.

    Bytes go to a hidden temporary file in the same directory; on success it is
    fsynced and renamed over *path*. On any error the temporary file is removed
    and *path* is left as it was, unless only the directory's fsync after the
    rename failed: the new file is in place then, but may not survive a power cut.

    ``backup=True`` keeps the old *path*, if any, as ``<path>.bak`` (see
    :func:`_keep_backup`), made durable before *path* changes: a crash at any
    step leaves the old backup or the new one, and the old file or the new.
    ``sync=False`` leaves the directory's fsync after the rename to the
    caller, who can then tell that failure (the new file is in place) apart.
    A new version keeps the mode of the file it replaces; a new file gets the
    layout's. *with_folders* are made durable together with the new bytes
    (:func:`sync_all`), before the rename: entries the new version refers to.
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp = temp_name(directory, ".part")
    kept = _mode_of_file(path)
    binary = open_new(tmp, mode=layout.file_mode(path) if kept is None else kept)
    handle: IO[Any] = (
        io.TextIOWrapper(binary, encoding="utf-8", newline="") if text else binary
    )
    try:
        if kept is not None:
            os.fchmod(binary.fileno(), kept)  # exactly: the umask must not take bits of it
        yield handle
        if with_folders:
            handle.flush()
            sync_all([tmp], with_folders)
            handle.close()
        else:
            _sync_and_close(handle)
        if backup and _keep_backup(path, directory):
            # Else a power cut could keep the rename below but lose the backup's.
            fsync_dir(directory)
        replace(tmp, path, sync=sync)
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        _remove_quietly(tmp)
        raise


def _keep_backup(path: str, directory: str) -> bool:
    """Give the current *path* the second name ``<path>.bak``; False if there is none.

    A hard link shares the bytes rather than copying them (a copy where there
    are no hard links); the rename swaps the backup in one step, so a crash
    leaves the old backup or the new one. The caller fsyncs *directory*.
    """
    backup = path + ".bak"
    if not os.path.isfile(path):
        return False
    if os.path.exists(backup) and os.path.samefile(path, backup):
        # A failed write left both names on one file; a rename between two
        # names of one file does nothing, and would leave the link behind.
        return True
    tmp = temp_name(directory, ".bak")
    try:
        link_or_copy(path, tmp, sync=False)
        replace(tmp, backup, sync=False)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return True


def _remove_quietly(path: str) -> None:
    # Cleaning up after a failure must not hide the failure itself.
    with contextlib.suppress(OSError):
        os.unlink(path)


def _mode_of_file(path: str) -> int | None:
    """The permission bits of the regular file *path*, or None (missing, a link...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def atomic_write(path: str, data: bytes, with_folders: Sequence[str] = ()) -> None:
    """Replace *path* with *data*, atomically and durably (see :func:`atomic_writer`)."""
    with atomic_writer(path, with_folders=with_folders) as handle:
        handle.write(data)


@contextlib.contextmanager
def new_file(path: str, sync: bool = True) -> Iterator[io.BufferedWriter]:
    """Create *path* (it must not exist) and make its bytes durable on exit.

    For staging files whose name is already private (a staging folder):
    no rename is needed, the caller's journal decides when they count.
    ``sync=False`` still fsyncs the bytes but leaves the folder's fsync to
    the caller (a journal group fsyncs its staging folder once).
    """
    handle = open_new(path)
    try:
        yield handle
        _sync_and_close(handle)
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        raise
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


def append_file(dest: str, staged: str, at_size: int) -> None:
    """Make *dest* hold its first *at_size* bytes followed by *staged*.

    Cutting back first makes this idempotent: run twice after a crash, the
    result is the same, with the new bytes present exactly once. Bytes past
    *at_size* that are not the start of *staged* were appended by later
    changes since this one was planned (only an intent set aside and put
    back can see that): cutting them off would lose them, so that is
    refused (EINVAL).
    """
    size = os.lstat(dest).st_size
    if size != at_size:
        if not _holds_start_of(dest, at_size, size - at_size, staged):
            raise OSError(errno.EINVAL, "it has grown by later changes since this append was "
                          "planned; appending again would cut their rows off", dest)
        truncate(dest, at_size)
    with open_read(staged, shared=True) as source, open_new(dest, append=True) as target:
        shutil.copyfileobj(source, target, _COPY_CHUNK)
        target.flush()
        fsync(target.raw.fd)  # type: ignore[attr-defined]


def _holds_start_of(dest: str, offset: int, length: int, staged: str) -> bool:
    """Are the *length* bytes of *dest* at *offset* the first bytes of *staged*?

    Then they are this very append, cut short or whole (a crash in between).
    """
    if length < 0 or length > os.lstat(staged).st_size:
        return False
    with open_read(dest) as tail, open_read(staged, shared=True) as head:
        tail.seek(offset)
        while length > 0:
            n = min(length, _COPY_CHUNK)
            if tail.read(n) != head.read(n):
                return False
            length -= n
    return True


# -- copying and moving ----------------------------------------------------


@_point
def copy_file(src: str, dst: str, sync: bool = True) -> None:
    """Copy file *src* to the new name *dst* with its mode and times, durably.

    *dst* must not exist; callers copy onto a temporary name and rename.
    A symlink *src* is refused: callers resolve a link a person named.
    """
    with open_read(src, shared=True) as source, open_new(dst) as target:
        shutil.copyfileobj(source, target, _COPY_CHUNK)
        target.flush()
        shutil.copystat(src, dst, follow_symlinks=False)
        fsync(target.raw.fd)  # type: ignore[attr-defined]
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(dst)))


def link_or_copy(src: str, dst: str, sync: bool = True) -> None:
    """Give *dst* the bytes of file *src*: a hard link where possible, else a copy.

    A link costs the same for any size and leaves *src* as it is; a copy is
    the fallback across filesystems or where there are no hard links. Any
    other error is a real failure and is raised.
    """
    try:
        link(src, dst, sync=sync)
    except OSError as exc:
        if exc.errno not in NO_HARD_LINK:
            raise
        copy_file(src, dst, sync=sync)


def copy_new(src: str, dst: str) -> None:
    """Copy file *src* to *dst* durably; FileExistsError if *dst* exists.

    The bytes go to a temporary name beside *dst* first, so *dst* appears
    complete or not at all.
    """
    tmp = temp_name(os.path.dirname(os.path.abspath(dst)))
    try:
        copy_file(src, tmp)
        rename_noreplace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_tree(src: str, dst: str) -> None:
    """Copy *src* (file, symlink or directory tree) to the new name *dst*.

    Contents, modes and modification times are kept, every file and folder
    is fsynced. Symlinks are copied as links, never followed.
    """
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        _symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        mkdir(dst)
        for entry in sorted(os.listdir(src)):
            copy_tree(os.path.join(src, entry), os.path.join(dst, entry))
        shutil.copystat(src, dst, follow_symlinks=False)
        fsync_dir(dst)
    else:
        copy_file(src, dst)


@_point
def _symlink(target: str, dst: str) -> None:
    os.symlink(target, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


def move(src: str, dst: str, *, overwrite: bool = False) -> None:
    """Move *src* (file or tree) to *dst*, on one filesystem or across two.

    On one filesystem this is a single durable rename. Across filesystems
    (``EXDEV``) the tree is copied to a temporary name beside *dst*,
    fsynced, renamed into place, and only then is *src* removed: a crash
    leaves *src* intact, and at worst a hidden temporary copy or both
    copies, never a torn file under the final name. Group moves that must
    be all-or-nothing go through :mod:`datacenter.journal` instead.
    """
    try:
        if overwrite:
            replace(src, dst)
        else:
            rename_noreplace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = temp_name(os.path.dirname(os.path.abspath(dst)))
    try:
        copy_tree(src, tmp)
        if overwrite:
            replace(tmp, dst)
        else:
            rename_noreplace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            rmtree(tmp)
        raise
    rmtree(src)


# -- links: never followed ------------------------------------------------------


def planted(path: str) -> str | None:
    """Why *path* must not be used as a file of the storage's own, or None.

    ``"a symbolic link"`` (it could lead anywhere), ``"a hard link with N
    names"`` (a second name could be outside: whoever reads it reads what
    is appended here, or it is an outside file put here). None for a
    missing path, a folder, or a regular file with one name.
    """
    try:
        return _foreign(os.lstat(path), shared=False)
    except FileNotFoundError:
        return None


def _foreign(st: os.stat_result, shared: bool) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link"
    if not shared and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        return f"a hard link with {st.st_nlink} names"
    return None


def check_folder(path: str) -> None:
    """Refuse (PlantedLinkError) a folder of the storage that is a symbolic link."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise PlantedLinkError.at(path, "a symbolic link")


def open_own(path: str, flags: int = os.O_RDONLY, mode: int = layout.SHARED_FILE,
             shared: bool = False) -> int:
    """``os.open`` of a file in the storage, never through a link; returns the fd.

    ``O_NOFOLLOW`` refuses a symlink as the last component, and the checks
    are made on the open file (``fstat``), so no swap can slip in between:
    anything but a regular file is refused, and so is a file with a second
    name unless *shared* says it may have one (a file staged by a hard link
    on purpose, a source on its way through a journal step). ``O_NONBLOCK``
    keeps a planted FIFO from blocking the open; regular files ignore it.
    """
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PlantedLinkError.at(path, "a symbolic link") from None
        raise
    st = os.fstat(fd)
    reason = _foreign(st, shared) or (None if stat.S_ISREG(st.st_mode) else "not a regular file")
    if reason is not None:
        os.close(fd)
        raise PlantedLinkError.at(path, reason)
    os.set_blocking(fd, True)  # for the filesystems that would heed it on a regular file
    return fd


def open_read(path: str, shared: bool = False) -> io.BufferedReader:
    """A binary reader of the storage's file *path* (see :func:`open_own`)."""
    return open(path, "rb", opener=lambda name, flags: open_own(name, flags, shared=shared))


@_point
def restrict(path: str, mode: int) -> None:
    """Take from *path* every permission bit that *mode* does not have.

    For what was created before the layout's modes, or by code that does not
    ask for them (SQLite creates its files 0644). A symlink, a missing path
    or a file of another owner is left as it is.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    bits = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode) or bits & ~mode == 0 or st.st_uid != os.geteuid():
        return
    os.chmod(path, bits & mode)


@_point
def create_private(path: str) -> None:
    """Create *path* empty and private (0600) unless it exists; then :func:`restrict` it.

    For a file another library fills (the SQLite record store): created by
    us first, it never exists with a wider mode, not even for an instant.
    """
    with contextlib.suppress(FileExistsError):
        os.close(open_own(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, layout.PRIVATE_FILE))
    restrict(path, layout.PRIVATE_FILE)


def _fsync_parents(*paths: str) -> None:
    seen: set[str] = set()
    for path in paths:
        parent = os.path.dirname(os.path.abspath(path))
        if parent not in seen:
            seen.add(parent)
            fsync_dir(parent)
