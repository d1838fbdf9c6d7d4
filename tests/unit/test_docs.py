"""The README and .env.example must name every setting the service reads."""

from pathlib import Path

import pytest

from recovery.config import DEFAULTS, PREFIX

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
@pytest.mark.parametrize("setting", sorted(DEFAULTS))
def test_every_setting_is_documented(document, setting):
    assert f"{PREFIX}_{setting}" in (ROOT / document).read_text(), f"{document} misses {setting}"
