"""Make sure someone can log in: create the first user from env vars, by asking, or generated."""

import os
import secrets
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

PASSWORD_FILE = ".first-user-password"  # in the project's folder, as .secret_key


class Command(BaseCommand):
    help = "Create the first (staff) user when there is none, and say how to log in."

    def handle(self, *args: object, **options: object) -> None:
        User = get_user_model()
        site = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/"
        if User.objects.exists():
            self.stdout.write(f"Log in at {site} with your existing account.")
            return
        username = os.environ.get("CHATSITE_ADMIN_USERNAME", "")
        password = os.environ.get("CHATSITE_ADMIN_PASSWORD", "")
        if username and password:
            User.objects.create_superuser(username=username, password=password, email="")
            self.stdout.write(f"Created user {username!r} from CHATSITE_ADMIN_USERNAME/_PASSWORD.")
        elif sys.stdin.isatty():
            self.stdout.write("No user yet: create the first one (it can also use the admin).")
            call_command("createsuperuser", email="")
        else:
            username = username or "admin"
            password = secrets.token_urlsafe(12)
            # The file first: should it fail (a folder not writable), no user is left whose
            # password no one knows, and the next run tries again.
            path = write_private(settings.BASE_DIR / PASSWORD_FILE, password)
            User.objects.create_superuser(username=username, password=password, email="")
            self.stdout.write(
                f"Created user {username!r}; its password is in {path}, readable by you alone "
                "(change it once logged in, then delete the file; or set "
                "CHATSITE_ADMIN_USERNAME and CHATSITE_ADMIN_PASSWORD to choose them)."
            )
        self.stdout.write(f"Log in at {site}")


def write_private(path: Path, text: str) -> Path:
    """`text` in a file only its owner may read. Not printed: without a terminal the output
    goes to a log (journald, docker logs) that others read and that is kept."""
    # Not through a link someone put there.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left from before keeps its mode otherwise
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    return path
