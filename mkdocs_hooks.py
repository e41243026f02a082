"""MkDocs hook: publish benchmarks/ beside the docs, so pages can link to result files as ``../benchmarks/...``.

The docs pages live in docs/ and link to the committed result files with paths that work when the markdown is
read in the repository (``../benchmarks/results/x.md``). MkDocs only knows the files under docs/, so such a link
would be reported as broken; this hook adds every file under benchmarks/ to the build under the same relative
path (source ``../benchmarks/...``, published at ``benchmarks/...``), and ``mkdocs build --strict`` still fails on a
link to a file that does not exist. A link from such a file back into docs/ (``../docs/x.md``) is rewritten to
the docs-relative form MkDocs resolves (``/x.md``, with ``validation.links.absolute_links: relative_to_docs``).
"""

from __future__ import annotations

import os
import posixpath
import re

from mkdocs.structure.files import File, Files, InclusionLevel

_FOLDERS = ("benchmarks",)
_SUFFIXES = (".md", ".json", ".png", ".csv", ".txt")


def _page_dest(rel: str, use_directory_urls: bool) -> str:
    """Where MkDocs would publish ``rel`` (a markdown page) had it been inside docs/."""
    stem = rel[: -len(".md")]
    if stem.endswith(("/README", "/index")):
        return stem.rsplit("/", 1)[0] + "/index.html"
    return stem + "/index.html" if use_directory_urls else stem + ".html"


def on_files(files: Files, config) -> Files:
    docs_dir = config["docs_dir"]
    root = os.path.dirname(os.path.abspath(config["config_file_path"]))
    for folder in _FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            for name in sorted(filenames):
                if not name.endswith(_SUFFIXES):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                files.append(
                    File(
                        os.path.relpath(os.path.join(root, rel), docs_dir).replace(os.sep, "/"),
                        docs_dir,
                        config["site_dir"],
                        config["use_directory_urls"],
                        dest_uri=_page_dest(rel, config["use_directory_urls"]) if rel.endswith(".md") else rel,
                        inclusion=InclusionLevel.NOT_IN_NAV,
                    )
                )
    return files


_LINK = re.compile(r"\]\(([^)\s#]+)(#[^)\s]*)?\)")


def _relink(markdown: str, here: str, page_src: str) -> str:
    """Rewrite relative links of a markdown file that sits in the repository folder ``here`` so that MkDocs
    resolves them from the page ``page_src``: targets under docs/ become docs-relative (``/x.md``), the rest keep
    pointing at the same repository file through the ``../`` sources added by ``on_files``."""

    def fix(match: re.Match) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        in_repo = posixpath.normpath(posixpath.join(here, target))
        if in_repo.startswith("docs/"):
            return f"](/{in_repo[len('docs/') :]}{anchor})"
        if page_src.startswith("../"):
            return match.group(0)
        return f"]({posixpath.relpath('../' + in_repo, posixpath.dirname(page_src) or '.')}{anchor})"

    return _LINK.sub(fix, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    src = page.file.src_uri
    if src == "index.md":  # the site's home page is the repository's README
        root = os.path.dirname(os.path.abspath(config["config_file_path"]))
        with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
            return _relink(f.read(), "", src)
    if src.startswith("../"):
        return _relink(markdown, posixpath.dirname(src[len("../") :]), src)
    return markdown
