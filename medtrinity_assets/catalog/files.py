"""The files under a source root, walked once, and glob matching over them (wcmatch).

Directory symlinks are neither items nor descended into (a loop under ``**`` cannot multiply
items; a link to a directory inside the root would only duplicate it, one outside is refused
anyway); they are reported as a finding. Patterns use wcmatch's glob syntax with ``**`` (GLOBSTAR); hidden files are skipped.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field

from wcmatch import fnmatch as wfnmatch
from wcmatch import glob as wglob

GLOB_FLAGS = wglob.GLOBSTAR


@dataclass
class FileIndex:
    root: str
    entries: list[str] = field(default_factory=list)  # relative posix paths (files, dirs, special files), sorted
    by_dir: dict[str, list[str]] = field(default_factory=dict)  # directory ('' = root) -> sorted names
    dir_links: list[str] = field(default_factory=list)  # directory symlinks: neither entries nor followed

    @classmethod
    def scan(cls, root: str) -> "FileIndex":
        index = cls(root)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir
            links = sorted(n for n in dirnames if os.path.islink(os.path.join(dirpath, n)))
            index.dir_links.extend(f"{rel_dir}/{n}" if rel_dir else n for n in links)
            dirnames[:] = sorted(n for n in dirnames if n not in links)
            names = sorted(dirnames + filenames)
            index.by_dir[rel_dir] = names
            index.entries.extend(f"{rel_dir}/{n}" if rel_dir else n for n in names)
        index.entries.sort()
        return index

    def exists(self, rel: str) -> bool:
        directory, _, name = rel.rpartition("/")
        names = self.by_dir.get(directory, [])
        i = bisect.bisect_left(names, name)
        return i < len(names) and names[i] == name

    def match(self, patterns: list[str] | str) -> list[str]:
        """Entries matching any of `patterns` (sorted)."""
        pats = [patterns] if isinstance(patterns, str) else list(patterns)
        return sorted(wglob.globfilter(self.entries, pats, flags=GLOB_FLAGS))

    def match_one(self, pattern: str) -> list[str]:
        """Entries matching one pattern, looked up by directory and literal name prefix when it allows."""
        directory, _, base = pattern.rpartition("/")
        dir_literal, dir_wild = _literal(directory)
        if dir_wild:
            return self.match(pattern)
        prefix, base_wild = _literal(base)
        if not base_wild:
            rel = f"{dir_literal}/{prefix}" if dir_literal else prefix
            return [rel] if self.exists(rel) else []
        names = self.by_dir.get(dir_literal, [])
        hits = []
        for name in names[bisect.bisect_left(names, prefix) :]:
            if not name.startswith(prefix):
                break
            if wfnmatch.fnmatch(name, base):
                hits.append(f"{dir_literal}/{name}" if dir_literal else name)
        return hits


def _literal(pattern: str) -> tuple[str, bool]:
    """(the unescaped characters of a glob pattern before its first wildcard, whether it has one)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in "*?[":
            return "".join(out), True
        out.append(ch)
        i += 1
    return "".join(out), False
