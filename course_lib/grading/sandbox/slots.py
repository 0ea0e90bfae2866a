"""Machine-wide sandbox slots: which worker index (and so which uid, 61000 + index) a sandbox may use now.

A sandbox runs as the uid of its worker index, its process cap counts that uid's processes, and its clean-up
kills every process of that uid. Two sandboxes sharing an index at the same time would therefore share a cap
and kill each other. Threads of one `course grade`, two concurrent `course grade` runs and several Dask
worker processes on one machine all take their index here: a slot is an exclusive lock (flock) on a file in a
root-only folder (without root: the grading user's own), held while the sandbox runs and released by the
kernel if its holder dies.
"""

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from course_lib.errors import CourseError
from course_lib.grading.sandbox.bubblewrap import unprivileged

MAX_SLOTS = 256  # uids 61000..61255


class NoFreeSlot(CourseError, RuntimeError):
    """Every slot is taken: more concurrent sandboxes on this machine than MAX_SLOTS."""


def slot_dir() -> Path:
    """Where the lock files live: $RECTIFIED_SLOT_DIR, else /run/rectified-sandbox-slots as root, else a folder
    of this user's in the temporary folder (without root a sandbox's uid is its own namespace's, but the index
    still names its working files)."""
    if "RECTIFIED_SLOT_DIR" in os.environ:
        return Path(os.environ["RECTIFIED_SLOT_DIR"])
    if not unprivileged():
        return Path("/run/rectified-sandbox-slots")
    return Path(tempfile.gettempdir()) / f"rectified-sandbox-slots-{os.geteuid()}"


@contextmanager
def claim() -> Iterator[int]:
    """Hold the lowest free slot on this machine for the duration of the `with` block; yields its index."""
    folder = slot_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.geteuid():  # in a shared temporary folder, another user's would be a trap
        raise NoFreeSlot(f"{folder} belongs to another user: set RECTIFIED_SLOT_DIR to a folder of your own")
    for index in range(MAX_SLOTS):
        fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield index
        finally:
            os.close(fd)  # closing the only descriptor of this open file releases the lock
        return
    raise NoFreeSlot(f"all {MAX_SLOTS} sandbox slots in {folder} are taken")
