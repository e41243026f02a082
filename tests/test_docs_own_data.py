"""docs/own-data.md's own code blocks, executed on a tiny version of its worked example.

Blocks preceded by ``<!-- doctest -->`` run in order in one folder: ```python blocks with this
Python, ```bash blocks with bash (``ganworks`` being this checkout's command). The sizes are cut
by the substitutions below, each of which must still match the page.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "own-data.md"
#: page text -> what the test runs instead (a few hundred digits instead of 70000)
SMALL = {
    "N_UNLABELED = 59900": "N_UNLABELED = 300",
    "N_TEST = 10000": "N_TEST = 60",
    "--epochs 3 --out runs/mnist-own": "--epochs 1 --out runs/mnist-own",
}


def marked_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"<!-- doctest -->\s*\n```(\w+)\n(.*?)\n```", text, flags=re.S)


def test_the_page_marks_its_example_blocks():
    blocks = marked_blocks(PAGE.read_text())
    assert [lang for lang, _ in blocks] == ["python", "bash", "python", "python"]
    text = PAGE.read_text()
    for key in SMALL:
        assert text.count(key) == 1, key


@pytest.mark.slow
def test_docs_own_data_code_blocks_run(tmp_path, mnist_root):
    text = PAGE.read_text()
    for key, value in SMALL.items():
        text = text.replace(key, value)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "ganworks").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ganworks "$@"\n')
    (shim / "ganworks").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "GANWORKS_DATA": mnist_root,
        "PYTHONPATH": str(REPO / "src"),
        "GANWORKS_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    for lang, code in marked_blocks(text):
        cmd = [sys.executable, "-"] if lang == "python" else ["bash", "-e", "-o", "pipefail", "-s"]
        proc = subprocess.run(cmd, input=code, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{lang} block failed:\n{code}\n--- stderr:\n{proc.stderr[-3000:]}"
        outputs.append(proc.stdout)
    assert "mnist-own: 100 labeled, 300 unlabeled, 60 test images" in outputs[0]
    assert len((work / "predictions.csv").read_text().splitlines()) == 61
    assert (work / "unlabeled-top3.csv").read_text().startswith("file,predicted,class_1,prob_1,class_2")
    cli_errors = re.search(r"averaged D:\s+(\d+) / 60 errors", outputs[1]).group(1)
    assert f"{cli_errors} / 60 test errors" in outputs[2]  # Python and the command agree
    assert "torch.Size([16, 1, 28, 28]) torch.uint8" in outputs[2]
    assert (work / "runs" / "mnist-own-py" / "checkpoints" / "last.pt").is_file()
