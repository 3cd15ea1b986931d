"""The documentation: a short README that points to docs/, a site that builds without warnings, a changelog, and
a benchmarks page generated from the result files."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_is_a_front_door_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "make demo" in text and "make test" in text
    for link in ("docs/screens.md", "docs/uncertainty.md", "CHANGELOG.md", "benchmarks/README.md"):
        assert f"]({link})" in text and (ROOT / link).exists(), link
    assert (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")


def test_the_docs_build_strictly(tmp_path):
    mkdocs = Path(sys.executable).with_name("mkdocs")
    r = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                       capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "screens" / "index.html").exists()


def test_the_benchmarks_page_is_generated_from_the_current_results():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from make_readme import readme
    finally:
        sys.path.pop(0)
    assert (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8") == readme(), \
        "benchmarks/README.md is stale: run .venv/bin/python benchmarks/make_readme.py"
