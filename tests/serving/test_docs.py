"""/docs and /redoc work offline: their files come from the app, under a strict CSP."""

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_files_the_app_serves(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert urls, "the page loads no assets"
    for url in urls:
        assert url.startswith("/"), url  # no CDN
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_allow_only_their_own_inline_script(client: TestClient, path: str):
    response = client.get(path)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    allowed = {
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in inline
    }
    assert policy["script-src"].split() == ["'self'", *sorted(allowed)]
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_upload_form_in_the_schema_comes_from_the_signature(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/*"} <= content.keys()
    form = content["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    file_field = schema["components"]["schemas"][form]["properties"]["file"]
    assert {"type": "string", "contentMediaType": "application/octet-stream"} in file_field["anyOf"]
    batch = schema["paths"]["/api/predict/batch"]["post"]["requestBody"]["content"]
    batch_form = batch["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][batch_form]["required"] == ["files"]
