"""Small tmpfs mounts for storage-pressure tests (issue 15): a node's data
directory on a filesystem of a known size that a test can fill with ballast,
free again, and grow or shrink with `mount -o remount,size=`.

Needs root (mount(8)); `unavailable()` says why not, for a skipUnless."""
import errno
import os
import subprocess

MIB = 1024 * 1024


def unavailable():
    """None when tmpfs mounts work here, else the reason (for a skip)."""
    if os.geteuid() != 0:
        return "needs root to mount tmpfs (data directories on small filesystems)"
    probe = "/tmp/mf-tmpfs-probe-%d" % os.getpid()
    os.makedirs(probe, exist_ok=True)
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return "cannot mount tmpfs: %s" % (p.stderr.strip() or p.returncode)
        subprocess.run(["umount", probe], check=True)
        return None
    finally:
        os.rmdir(probe)


class Tmpfs:
    """A tmpfs of size_mb MiB at path (created; mode 0700 so a data directory
    may sit on its root). Ballast files live at its root as ballast-N."""

    def __init__(self, path, size_mb):
        self.path = path
        self.size_mb = size_mb
        self.ballast = []
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % size_mb, "tmpfs",
                        path], check=True, capture_output=True)
        self.mounted = True

    def free_bytes(self):
        """Bytes an unprivileged writer could still allocate (statvfs f_bavail)."""
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def used_bytes(self):
        st = os.statvfs(self.path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def resize(self, size_mb):
        """Grow or shrink the filesystem in place (shrinking below what is used
        fails: mount's error is raised)."""
        subprocess.run(["mount", "-o", "remount,size=%dm" % size_mb, self.path], check=True,
                       capture_output=True)
        self.size_mb = size_mb

    def fill(self, leave_bytes=0):
        """Eats the free space down to leave_bytes with a new ballast file
        (fallocate, then writes until ENOSPC for the last pages). Callable
        again: a node that released its reserve gave space back, and another
        call takes it. Returns the bytes taken."""
        want = self.free_bytes() - leave_bytes
        if want <= 0:
            return 0
        name = os.path.join(self.path, "ballast-%d" % len(self.ballast))
        self.ballast.append(name)
        fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o600)
        taken = 0
        try:
            try:
                os.posix_fallocate(fd, 0, want)
                taken = want
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
            if leave_bytes == 0:  # the last pages fallocate would not give
                os.lseek(fd, taken, os.SEEK_SET)
                chunk = b"\0" * 4096
                while True:
                    try:
                        n = os.write(fd, chunk)
                    except OSError as e:
                        if e.errno == errno.ENOSPC:
                            break
                        raise
                    if n <= 0:
                        break
                    taken += n
        finally:
            os.close(fd)
        return taken

    def unfill(self):
        """Removes every ballast file; returns the bytes given back."""
        before = self.free_bytes()
        for name in self.ballast:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        self.ballast = []
        return self.free_bytes() - before

    def unmount(self):
        if self.mounted:
            # lazy: a killed node's files may still be closing
            subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.mounted = False
