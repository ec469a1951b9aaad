"""What the command line takes besides plain paths: passwords, store URLs and their options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


class UsageError(Exception):
    """A command line that cannot work; reported with exit code 2, like argparse's own errors."""


def is_url(text: str) -> bool:
    """Anything with ``://`` names an object store; everything else is a local path."""
    return "://" in text


def read_password(args: argparse.Namespace) -> str | None:
    """Passwords come from a file or an environment variable, never from the command line."""
    if getattr(args, "password_file", None):
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except OSError as err:
            reason = err.strerror or type(err).__name__
            raise UsageError(
                f"cannot read the password file {args.password_file}: {reason}"
            ) from err
        # One trailing newline is the editor's, not the password's.
        password = text.rstrip("\r\n")
    elif getattr(args, "password_env", None):
        password = os.environ.get(args.password_env, "")
        if not password:
            raise UsageError(f"the environment variable {args.password_env} is not set or empty")
    else:
        return None
    if not password:
        raise UsageError("the password is empty")
    return password


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs -> a dict for ``ObjectStoreBackupSyncAgent(options=)``.

    Credentials can come this way, so an error names the key only, never the value.
    """
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError("--option takes KEY=VALUE (for example aws_endpoint=http://host:9000)")
        if key in options:
            raise UsageError(f"--option {key} is given twice")
        options[key] = value
    return options


def reject_options_without_url(args: argparse.Namespace, has_url: bool) -> None:
    """``--option`` configures a store; given without one it is surely a mistake."""
    if getattr(args, "option", None) and not has_url:
        raise UsageError("--option applies to object store URLs only (SCHEME://...)")
