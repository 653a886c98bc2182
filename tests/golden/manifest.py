#!/usr/bin/env python3
"""manifest.py DIR: one line per entry below DIR (DIR itself is "."), sorted
bytewise by path, with what a restore must reproduce: type, permission
bits, size, SHA-256, mtime (ns), symlink target, hard-link group and user
xattrs. Names are printed as Python bytes literals, so any byte survives.
Owners and atimes are left out (tests run as any user)."""
import hashlib
import os
import stat
import sys


def q(b):
    return repr(bytes(b))[2:-1].replace(" ", "\\x20").replace("\t", "\\t")


def entry(root, rel, first_of_inode):
    path = os.path.join(root, rel) if rel else root
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    fields = []
    if stat.S_ISLNK(st.st_mode):
        fields += ["l", "-", "target=" + q(os.readlink(path))]
    elif stat.S_ISDIR(st.st_mode):
        fields += ["d", "%04o" % mode, "mtime=%d" % st.st_mtime_ns]
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        fields += ["f", "%04o" % mode, "size=%d" % st.st_size, "sha256=" + digest,
                   "mtime=%d" % st.st_mtime_ns]
        if st.st_nlink > 1:
            fields.append("hardlink=" + q(first_of_inode.setdefault(key, rel or b".")))
    else:
        fields += ["other", "%04o" % mode]
    if not stat.S_ISLNK(st.st_mode):
        for name in sorted(os.listxattr(path)):
            if name.startswith("user."):
                value = os.getxattr(path, name)
                fields.append("xattr." + name + "=" + value.hex())
    return q(rel or b".") + " " + " ".join(fields)


def main():
    root = os.fsencode(sys.argv[1])
    rels = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            rels.append(os.path.relpath(os.path.join(dirpath, n), root))
    first = {}
    lines = [entry(root, b"", first)]
    for rel in sorted(rels):
        lines.append(entry(root, rel, first))
    sys.stdout.write("\n".join(lines) + "\n")


main()
