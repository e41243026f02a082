"""The documentation stays inside the repository and stays a front door.

Docstrings and comments cite the paper facts as ``docs/papers.md §X``; every cited section must exist there
under a heading, and nothing may point at the old file outside the repository. The README stays short (at most
150 lines and 12 KB, no prose line over 120 characters) and each of its relative links leads to a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT / "docs" / "papers.md"
README = ROOT / "README.md"
THIS = Path(__file__).resolve()

#: A section identifier as the code writes it: a part letter, a section number, an optional item letter (§C.4b).
_ID = r"[A-Z]\.\d+[a-z]?"
_CITE = rf"§{_ID}(?:\s*[-–]\s*§?{_ID})?"
#: "papers.md §A.2", "papers.md §A.2, §A.3, §C.4b", "papers.md §B.2-B.5"
_CITATION = re.compile(rf"papers\.md\s*({_CITE}(?:\s*,\s*{_CITE})*)")
_TEXT_SUFFIXES = {".py", ".toml", ".md", ".txt", ".sh", ".yml", ".yaml", ".cfg", ".ini", ".html", ".js", ".css", ""}


def _text_files(*folders: str) -> list[Path]:
    out = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            # build outputs (__pycache__, *.egg-info copies of the old README) are not the project's text
            generated = "__pycache__" in path.parts or any(p.endswith(".egg-info") for p in path.parts)
            if path.is_file() and path.suffix in _TEXT_SUFFIXES and not generated and path.resolve() != THIS:
                out.append(path)
    return out


def _expand(cite: str) -> list[str]:
    """``§B.2-B.5`` -> B.2, B.3, B.4, B.5; ``§A.1`` -> A.1; ``§C.4b`` -> C.4b."""
    ids = re.findall(_ID, cite)
    if len(ids) == 1:
        return ids
    first, last = ids
    (p1, n1), (p2, n2) = (re.match(r"([A-Z])\.(\d+)", i).groups() for i in (first, last))
    if p1 != p2 or not first[-1].isdigit() or not last[-1].isdigit():
        return [first, last]
    return [f"{p1}.{n}" for n in range(int(n1), int(n2) + 1)]


def citations(text: str) -> list[str]:
    """Every section identifier that ``text`` cites as ``papers.md §X``."""
    found = []
    for match in _CITATION.finditer(text):
        for cite in re.findall(_CITE, match.group(1)):
            found.extend(_expand(cite))
    return found


def sections_of(markdown: str) -> set[str]:
    """The section identifiers that head a section of ``markdown`` (``### §A.4 Minibatch discrimination``)."""
    out = set()
    for line in markdown.splitlines():
        if re.match(r"#{1,6}\s", line):
            out.update(re.findall(rf"§({_ID})\b", line))
    return out


def test_citation_parser_reads_lists_and_ranges():
    text = (
        "[see papers.md §A.2, §A.3, §C.4b] and papers.md §B.2-B.5. and docs/papers.md §A.6: x, "
        "papers.md §A.1-A.2. papers.md's remark"
    )
    assert citations(text) == ["A.2", "A.3", "C.4b", "B.2", "B.3", "B.4", "B.5", "A.6", "A.1", "A.2"]
    assert sections_of("## §A Part\n### §A.4 Minibatch\ntext §B.1 is not a heading\n#### §C.4b item") == {"A.4", "C.4b"}


def test_every_cited_papers_md_section_has_a_heading_in_docs_papers_md():
    sections = sections_of(PAPERS.read_text(encoding="utf-8"))
    missing, seen = [], 0
    for path in _text_files("src", "tests", "benchmarks", "docs") + [README]:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for section in citations(line):
                seen += 1
                if section not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: §{section}")
    assert seen > 50, f"only {seen} citations found: the citation pattern no longer matches the code's style"
    assert not missing, "cited sections missing from docs/papers.md:\n" + "\n".join(missing)


def test_code_cites_papers_md_by_its_path_inside_the_repository():
    stray = []
    for path in _text_files("src", "tests", "benchmarks"):
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if re.search(r"(?<!docs/)papers\.md", line):
                stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not stray, "cite the paper facts as docs/papers.md:\n" + "\n".join(stray)


def test_no_file_points_at_the_reference_outside_the_repository():
    outside = []
    roots = [p for p in ROOT.iterdir() if p.is_file() and p.suffix in _TEXT_SUFFIXES]
    for path in _text_files("src", "tests", "benchmarks", "docs", ".ci") + roots:
        if "shared/reference" in path.read_text(encoding="utf-8", errors="replace"):
            outside.append(str(path.relative_to(ROOT)))
    assert not outside, f"these files point at ../shared/reference instead of docs/papers.md: {outside}"


# --- the README ----------------------------------------------------------------------------------------------


def _prose_lines(markdown: str) -> list[tuple[int, str]]:
    """Lines outside fenced code blocks and tables."""
    out, fenced = [], False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.lstrip().startswith("|"):
            continue
        out.append((number, line))
    return out


def test_readme_is_at_most_150_lines_and_12_kb():
    data = README.read_bytes()
    assert len(data.splitlines()) <= 150
    assert len(data) <= 12_000


def test_readme_has_no_prose_line_over_120_characters():
    long = [
        f"line {n}: {len(line)} characters"
        for n, line in _prose_lines(README.read_text(encoding="utf-8"))
        if len(line) > 120
    ]
    assert not long, long


def test_prose_line_check_skips_code_blocks_and_tables_only():
    text = "short\n```\n" + "c" * 200 + "\n```\n| " + "t" * 200 + " |\n" + "p" * 121
    assert [n for n, line in _prose_lines(text) if len(line) > 120] == [6]


def test_every_relative_link_in_the_readme_leads_to_a_file():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    assert targets, "no links found in README.md"
    broken = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the README itself
        path = target.split("#", 1)[0]
        if not (ROOT / path).resolve().is_file():
            broken.append(target)
    assert not broken, f"README links to missing files: {broken}"


def test_ci_runs_the_readme_test_command():
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    command = next((b.strip() for b in blocks if "pytest" in b), None)
    assert command == "pip install -e '.[test]' && python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert any(line.strip().startswith(command) for line in ci)


@pytest.mark.parametrize(
    "page",
    [
        "papers.md",
        "turing.md",
        "fidelity.md",
        "results.md",
        "reproduce.md",
        "configuration.md",
        "data.md",
        "training.md",
        "metrics.md",
        "library.md",
    ],
)
def test_readme_links_each_documentation_page(page):
    assert f"](docs/{page})" in README.read_text(encoding="utf-8")
