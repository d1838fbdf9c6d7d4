"""Fixtures for tests that build apps from the environment."""

import pytest


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """Point the app's instance folder at a temporary directory and clear RECOVERY_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("RECOVERY_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(tmp_path))
    return tmp_path
