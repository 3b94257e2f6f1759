"""The README's commands on a machine without a suitable Python: ./dev says what to install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

PYTHON_3_11 = "/usr/bin/python3.11"  # the machine's default python3 (Debian 12)


def run_dev(tmp_path: Path, pythons: dict[str, str]) -> subprocess.CompletedProcess:
    """./dev test, copied alone into tmp_path, with only `pythons` (name -> program) on PATH
    beside the tools it uses, and no pyenv or uv install."""
    shutil.copy(Path(settings.BASE_DIR) / "dev", tmp_path / "dev")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "rm", "mkdir", "touch", "chmod"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for name, program in pythons.items():
        (bin_dir / name).symlink_to(program)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return subprocess.run(
        [str(bin_dir / "bash"), str(tmp_path / "dev"), "test"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_without_python_3_12_dev_says_what_to_install(tmp_path):
    pythons = {"python3": PYTHON_3_11} if os.path.exists(PYTHON_3_11) else {}
    result = run_dev(tmp_path, pythons)
    assert result.returncode == 1
    assert "chatsite needs Python 3.12 or newer" in result.stderr
    assert "sudo apt install python3.12 python3.12-venv" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_python_whose_venv_fails_leaves_no_half_made_venv(tmp_path):
    # A Python that passes the probe, but whose venv module fails half-way (as a Debian
    # Python without python3.X-venv does, leaving .venv/bin/python behind).
    fake = tmp_path / "fake-python"
    fake.write_text(
        "#!/bin/bash\n"
        'if [ "$1" = "-m" ] && [ "$2" = venv ]; then\n'
        '  mkdir -p "$3/bin" && touch "$3/bin/python" && chmod +x "$3/bin/python"; exit 1\n'
        "fi\n"
        f'[ "$1" = --version ] && echo "Python 3.12.0" || exec {sys.executable} "$@"\n'
    )
    fake.chmod(0o755)
    result = run_dev(tmp_path, {"python3.12": str(fake)})
    assert result.returncode == 1
    assert "Could not create .venv" in result.stderr
    assert "install its venv module" in result.stderr
    assert not (tmp_path / ".venv").exists()
