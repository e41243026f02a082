"""One writer per run folder: ``<run>/.ganworks.lock``, locked with ``fcntl.flock`` and holding the pid.

Every writer of a run folder (``ganworks train``, new or ``--resume``, and ``ganworks reproduce``,
which launches it) takes this lock before it writes anything. The lock lives as long as the open
file description does, so it vanishes with its holder (also after a kill -9) and never goes stale;
the pid written into the file only names the holder in the refusal.

``ganworks reproduce`` takes the lock, then starts ``ganworks train`` with the locked descriptor
inherited and its number in ``GANWORKS_RUN_LOCK_FD``: the child uses that lock instead of taking a
second one (which its own parent's lock would refuse), and writes its pid into the file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import GanworksError

LOCK = ".ganworks.lock"
#: environment variable naming an inherited, already locked descriptor of a run folder's lock file
INHERITED_FD = "GANWORKS_RUN_LOCK_FD"


class RunFolderBusy(GanworksError):
    """Another process holds the run folder's lock."""


class RunLock:
    """A held lock on a run folder (released by ``release()`` or when the process ends)."""

    def __init__(self, run_dir: Path, fd: int, owned: bool) -> None:
        self.run_dir, self.fd, self.owned = Path(run_dir), fd, owned

    def fileno(self) -> int:
        return self.fd

    def release(self) -> None:
        if self.fd >= 0 and self.owned:
            os.close(self.fd)  # closing the last descriptor of the description drops the flock
        self.fd = -1


def holder_pid(run_dir: Path) -> int | None:
    """The pid written into the run folder's lock file (None if none or unreadable)."""
    try:
        return int((Path(run_dir) / LOCK).read_text().strip().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_locked(run_dir: Path) -> bool:
    """Whether some process (this one included, through another descriptor) holds the lock."""
    path = Path(run_dir) / LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _inherited(path: Path) -> int | None:
    """The inherited locked descriptor of ``path`` named by ``GANWORKS_RUN_LOCK_FD``, if any."""
    value = os.environ.get(INHERITED_FD, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        st, want = os.fstat(fd), path.stat()
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
        return None  # a lock of another run folder (a reproduce child starting something else)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # our own description: succeeds when we hold it
    except OSError:
        return None
    return fd


def acquire(run_dir: str | os.PathLike, what: str = "run folder") -> RunLock:
    """Lock ``run_dir`` (created if missing) for this process, or raise ``RunFolderBusy`` naming the holder."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        fd = _inherited(path) if path.exists() else None
        if fd is not None:
            _write_pid(fd)
            return RunLock(run_dir, fd, owned=False)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise GanworksError(
            f"cannot write in {run_dir} ({e.strerror}): pick a folder you can write to (--out)"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pid = holder_pid(run_dir)
        who = f"process {pid}" if pid else "another process"
        raise RunFolderBusy(
            f"{what} {run_dir} is in use by {who} (lock file {run_dir / LOCK}): wait for it to "
            f"finish or stop it (kill {pid or '<pid>'}); two writers would mix their rows"
        ) from None
    _write_pid(fd)
    return RunLock(run_dir, fd, owned=True)
