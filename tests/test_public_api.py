"""The public API is what __all__ says, and importing the protocol stays free of Flask."""

from __future__ import annotations

import subprocess
import sys

import flask_wechat


def test_every_public_name_resolves() -> None:
    for name in flask_wechat.__all__:
        assert getattr(flask_wechat, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        flask_wechat.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_does_not_import_flask() -> None:
    code = "import sys, flask_wechat; sys.exit('flask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_fake_wechat_runs_without_flask() -> None:
    code = "import sys, flask_wechat.testing.fake, flask_wechat.testing.server; sys.exit('flask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_cli_runs_the_fake_server_help() -> None:
    from click.testing import CliRunner

    from flask_wechat.cli import wechat_cli

    result = CliRunner().invoke(wechat_cli, ["fake-server", "--help"])
    assert result.exit_code == 0
    assert "--rtt-ms" in result.output
