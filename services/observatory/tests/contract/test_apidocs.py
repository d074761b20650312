"""/docs and /redoc: served with their assets by the service (no other host is named), under
a policy of their own that admits Swagger UI's one inline script by its hash only."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from app.apidocs.endpoints import STATIC

URL = re.compile(r"""(?:src|href|spec-url|url)\s*[=:]\s*["']([^"']+)["']""")


def local_references(html: str) -> list[str]:
    found = URL.findall(html)
    assert found, "no reference found: the pattern no longer matches the page"
    return found


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_docs_name_no_other_host_and_every_asset_answers(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"(?:https?:)?//[a-z0-9]", html, re.IGNORECASE), "an external URL"
    for ref in local_references(html):
        assert ref.startswith("/"), ref
        asset = await client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 0


async def test_swagger_ui_config_sends_nothing_to_the_public_validator(
    client: httpx.AsyncClient,
) -> None:
    assert '"validatorUrl": null' in (await client.get("/docs")).text


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_docs_policy_admits_only_their_own_inline_script(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path)
    policy = r.headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src "))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in inline
    ]
    assert script_src.split()[1:] == ["'self'", *hashes]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_the_page_keeps_its_stricter_policy(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).headers["content-security-policy"]
    docs = (await client.get("/docs")).headers["content-security-policy"]
    assert "unsafe" not in page and "require-trusted-types-for 'script'" in page
    assert page != docs


def test_each_vendored_viewer_keeps_its_licence() -> None:
    for folder, script in (
        ("swagger-ui", "swagger-ui-bundle.js"),
        ("redoc", "redoc.standalone.js"),
    ):
        assert (STATIC / folder / script).stat().st_size > 100_000
        assert "Permission is hereby granted" in (STATIC / folder / "LICENSE").read_text() or (
            "Apache License" in (STATIC / folder / "LICENSE").read_text()
        )
        assert (STATIC / folder / f"{script}.LICENSE.txt").is_file()
