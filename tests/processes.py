"""The processes below a process, read from /proc (tests that kill or inspect what Ray started)."""

from __future__ import annotations

from pathlib import Path


def process_tree(root: int) -> set[int]:
    """`root` and every process below it (Ray's servers are children of the driver or `ray start`, its workers of the
    raylet, in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        except (ValueError, OSError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found
