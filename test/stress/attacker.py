# SPDX-License-Identifier: GPL-2.0-only
# The gauntlet's unprivileged attacker (run as `nobody` by test/stress/gauntlet.ts):
# races the daemon in a manual-mode tree directory it owns, trying to make the
# daemon act on canaries outside the tree. Prints the number of attempts and
# the number of file operations of theirs that succeeded.
#
#   attacker.py JOBDIR CANARY_BPFFS_DIR CANARY_PIN CANARY_TMP_FILE NAMES ATTEMPTS SECONDS SEED
#
# NAMES: comma-separated names of existing child cgroups (matching tree names).
import ctypes
import os
import random
import sys
import time

job, canary_dir, canary_pin, canary_file, names, attempts, seconds, seed = sys.argv[1:9]
names = [n for n in names.split(',') if n]
attempts, seconds = int(attempts), float(seconds)
rnd = random.Random(int(seed))
libc = ctypes.CDLL(None, use_errno=True)
SYS_renameat2 = 316  # x86_64
AT_FDCWD = -100
RENAME_EXCHANGE = 2
VIEW = 'info'


def exchange(a, b):
    global ok
    if libc.syscall(SYS_renameat2, AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) == 0:
        ok += 1


ok = 0


def quiet(fn, *a):
    global ok
    # Now and then a pause between the steps of an attack, so that the daemon
    # meets it half done (the window a race needs), not only its end state.
    if rnd.randrange(8) == 0:
        time.sleep(rnd.random() * 0.002)
    try:
        fn(*a)
        ok += 1
    except OSError:
        pass


def p(*parts):
    return os.path.join(job, *parts)


def attack():
    n = rnd.choice(names)
    d = p(n)
    k = rnd.randrange(9)
    tmp = p(f'.x{rnd.randrange(1 << 30)}'.replace('.', '_'))
    if k == 0:  # a mirrored directory swapped for a symlink to a bpffs dir outside the tree
        quiet(os.rename, d, tmp)
        quiet(os.symlink, canary_dir, d)
        quiet(os.unlink, d)
        quiet(os.rename, tmp, d)
    elif k == 1:  # the view file replaced by a symlink to a file outside the tree
        quiet(os.unlink, os.path.join(d, VIEW))
        quiet(os.symlink, rnd.choice([canary_pin, canary_file]), os.path.join(d, VIEW))
    elif k == 2:  # RENAME_EXCHANGE of a mirrored directory with a symlink outside
        quiet(os.symlink, canary_dir, tmp)
        exchange(tmp, d)
        exchange(tmp, d)
        quiet(os.unlink, tmp)
    elif k == 3:  # a hard link to a root-owned pin outside the tree, under the view's name
        quiet(os.unlink, os.path.join(d, VIEW))
        quiet(os.link, canary_pin, os.path.join(d, VIEW))
    elif k == 4:  # a FIFO under the view's name
        quiet(os.unlink, os.path.join(d, VIEW))
        quiet(os.mkfifo, os.path.join(d, VIEW))
    elif k == 5:  # a directory pre-created under a cgroup's name (or one root is about to make), holding traps
        if rnd.randrange(2):
            d = p(f't{seed}x{rnd.randrange(3000)}')  # names of the cgroups root churns this round
        quiet(os.mkdir, d)
        quiet(os.symlink, canary_dir, os.path.join(d, 'sub'))
        quiet(os.mkfifo, os.path.join(d, VIEW + '2'))
    elif k == 6:  # renames of mirrored directories between cgroup names
        quiet(os.rename, d, p(rnd.choice(names)))
    elif k == 7:  # the directory removed (and made again: the daemon repopulates it)
        for e in ('sub', VIEW, VIEW + '2'):
            quiet(os.unlink, os.path.join(d, e))
        quiet(os.rmdir, d)
        quiet(os.mkdir, d)
    else:  # a symlink to the outside directory under a fresh cgroup-like name
        quiet(os.symlink, canary_dir, tmp)
        quiet(os.rename, tmp, d)


done = 0
end = time.monotonic() + seconds
while done < attempts and time.monotonic() < end:
    attack()
    done += 1
print(done, ok)
