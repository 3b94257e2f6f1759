"""./dev serve's first user: without a terminal, a generated password goes to a file only its
owner reads, not to the output, which then goes to a log others read and that is kept."""

import stat
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


def test_a_generated_first_password_is_written_to_a_private_file_not_printed(
    db, settings, tmp_path, monkeypatch
):
    settings.BASE_DIR = tmp_path
    for name in ("CHATSITE_ADMIN_USERNAME", "CHATSITE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    left = tmp_path / ".first-user-password"
    left.write_text("an older one\n")
    left.chmod(0o644)  # left from before with a wider mode: it must not keep it
    monkeypatch.setattr("sys.stdin", StringIO())  # no terminal, as under systemd or docker
    output = StringIO()
    call_command("ensure_first_user", stdout=output)

    password = left.read_text().strip()
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    assert password != "an older one" and password not in output.getvalue()
    assert str(left) in output.getvalue()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)


def test_no_first_user_is_made_whose_password_could_not_be_kept(
    db, settings, tmp_path, monkeypatch
):
    settings.BASE_DIR = tmp_path / "not-there"  # the file cannot be written
    for name in ("CHATSITE_ADMIN_USERNAME", "CHATSITE_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stdin", StringIO())
    with pytest.raises(OSError):
        call_command("ensure_first_user", stdout=StringIO())
    assert not get_user_model().objects.exists()  # the next run tries again
