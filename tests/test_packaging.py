"""The distributions: they build without deprecation warnings, the sdist holds
what the test suite needs, and the wheel installs into a fresh virtual
environment where the README's first example runs."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: this environment's setuptools (the test extra pins the
    # version build-system.requires asks for), not two fresh build environments
    # each installed from the index; `pip install -e .` in CI tests isolation.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out, done.stdout + done.stderr


def test_the_build_warns_of_nothing_deprecated(dists):
    _, log = dists
    assert "deprecat" not in log.lower(), [ln for ln in log.splitlines() if "eprecat" in ln]


def test_the_sdist_holds_what_the_tests_need(dists):
    out, _ = dists
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    tracked = subprocess.run(["git", "ls-files", "tests", "examples"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked and set(tracked) <= names
    assert {"LICENSE", "README.md", "gradcli/py.typed"} <= names
    assert not any("__pycache__" in n for n in names)


def test_the_wheel_installs_and_runs_the_readme_example(dists, tmp_path):
    out, _ = dists
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert "gradcli/py.typed" in z.namelist()
        assert any(n.endswith("licenses/LICENSE") for n in z.namelist())
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    bindir = env / "bin"
    # The dependencies come from this environment (a path entry, not a site
    # directory: its own editable gradcli stays out); gradcli from the wheel.
    site = subprocess.run([str(bindir / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bindir / "python"), "install",
                    "--quiet", "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    where = subprocess.run([str(bindir / "python"), "-c", "import gradcli; print(gradcli.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(site), where  # the wheel's copy, not this checkout's
    done = subprocess.run(
        [str(bindir / "gradcli"), "eval", "2*dot(x,x)", "--x", "0,1,2,3", "--format", "plain"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # 2 x.x at (0, 1, 2, 3) is 2 * 14; its gradient 4x.
    assert done.stdout.splitlines() == ["value 28", "grad.x 0,4,8,12"]
