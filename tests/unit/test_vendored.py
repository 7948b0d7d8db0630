"""The vendored front-end files (services/gateway_static/): exactly what
VENDORED.md says, and pages that name no host outside this machine."""
import hashlib
import os
import re

import pytest

from common.config import ROOT

STATIC = os.path.join(ROOT, "services", "gateway_static")


def test_vendored_files_match_vendored_md():
    """services/gateway_static/VENDORED.md names the sha256 of each vendored file."""
    with open(os.path.join(STATIC, "VENDORED.md"), encoding="utf-8") as handle:
        table = handle.read()
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|", table, re.M)
    assert {name for name, _ in rows} == {"redoc.standalone.js", "LICENSE.redoc",
                                          "smoothie.js", "LICENSE.smoothie"}, rows
    for name, digest in rows:
        with open(os.path.join(STATIC, name), "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest, name


@pytest.mark.parametrize("name", ["docs.html", "console.html", "console.css", "console.js"])
def test_pages_name_no_external_host(name):
    """The pages written here (not the vendored files, whose comments name their
    authors' sites) load nothing from elsewhere."""
    with open(os.path.join(STATIC, name), encoding="utf-8") as handle:
        text = handle.read()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name + " names a host"
