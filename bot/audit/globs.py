"""Path globs as maintainers write them in `.github/review-loop.yml` (`docs/**`, `*.ipynb`)."""

import functools
import re

__all__ = ["path_matches"]


def path_matches(path: str, glob: str) -> bool:
    """Whether a repo-relative posix path matches a glob.

    `*` and `?` stay within one path segment, `**` spans segments, a trailing `/` means
    "everything under this directory", and a glob without `/` matches the file name in
    any directory (as in `.gitignore`).
    """
    return _compile(glob).fullmatch(path.lstrip("/")) is not None


@functools.lru_cache(maxsize=512)
def _compile(glob: str) -> re.Pattern[str]:
    glob = glob.strip().lstrip("/")
    if glob.endswith("/"):
        glob += "**"
    if "/" not in glob:
        glob = "**/" + glob
    return re.compile(_translate(glob))


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("(?:/.*)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)
