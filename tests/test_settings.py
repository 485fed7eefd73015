"""Start-up from the environment: production refuses missing secrets, development makes them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRINT_SECRETS = (
    "from django.conf import settings; "
    "print(settings.SECRET_KEY); print(','.join(settings.MAILADMIN['ENCRYPTION_KEYS']))"
)


def start(env: dict, var_dir: Path) -> subprocess.CompletedProcess:
    """Load the real settings in a fresh interpreter with exactly ``env``."""
    clean = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mailadmin.settings",
        "MAILADMIN_VAR_DIR": str(var_dir),
        **env,
    }
    code = f"import django; django.setup(); {PRINT_SECRETS}"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_without_debug_a_missing_secret_key_is_an_error_naming_it(tmp_path):
    result = start({"DEBUG": "0"}, tmp_path)
    assert result.returncode != 0
    assert "The environment variable SECRET_KEY is not set" in result.stderr
    assert not list(tmp_path.iterdir())


def test_without_debug_missing_encryption_keys_are_an_error_naming_them(tmp_path):
    result = start({"DEBUG": "0", "SECRET_KEY": "s" * 50}, tmp_path)
    assert result.returncode != 0
    assert "The environment variable MAILADMIN_ENCRYPTION_KEYS is not set" in result.stderr


def test_with_debug_secrets_are_made_once_and_reused(tmp_path):
    first = start({"DEBUG": "1"}, tmp_path)
    second = start({"DEBUG": "1"}, tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    secret_key, keys = first.stdout.split()
    assert len(secret_key) >= 50 and keys
    assert (tmp_path / "secret_key").read_text().strip() == secret_key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_the_environment_wins_over_generated_secrets(tmp_path):
    start({"DEBUG": "1"}, tmp_path)
    result = start({"DEBUG": "1", "SECRET_KEY": "k" * 50}, tmp_path)
    assert result.stdout.split()[0] == "k" * 50
