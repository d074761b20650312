"""Static checks of the files an operator deploys from (there is no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env_names() -> set[str]:
    return {f"OBSERVATORY_{name.upper()}" for name in Settings.model_fields}


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^(OBSERVATORY_[A-Z0-9_]+)=", text, re.MULTILINE))
    assert names == settings_env_names(), (
        f"missing: {sorted(settings_env_names() - names)}; unknown: {sorted(names - settings_env_names())}"
    )
    # The documented defaults parse as settings.
    values = dict(re.findall(r"^(OBSERVATORY_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE))
    kwargs = {k.removeprefix("OBSERVATORY_").lower(): v for k, v in values.items()}
    Settings(**kwargs)


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "postgres", "ollama", "ollama-init"} <= set(services)
    api = services["api"]
    assert api["build"] == "."
    unknown = set(api["environment"]) - settings_env_names()
    assert not unknown, f"compose sets variables the service does not read: {unknown}"
    assert api["environment"]["OBSERVATORY_DATABASE_URL"].startswith("postgresql+asyncpg://")
    for name, dep in api["depends_on"].items():
        assert name in services
        assert dep["condition"] in {"service_healthy", "service_completed_successfully"}
        if dep["condition"] == "service_healthy":
            assert "healthcheck" in services[name]
    init = services["ollama-init"]
    mount = init["volumes"][0].split(":")[0]
    assert (ROOT / mount).is_file(), f"{mount} mounted into ollama-init does not exist"
    for volume in compose.get("volumes", {}):
        assert any(volume + ":" in str(s.get("volumes", [])) for s in services.values())


def test_dockerfile_copies_existing_paths_and_runs_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            *sources, _dest = line.split()[1:]
            for src in sources:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    assert 'CMD ["observatory", "serve"]' in text
    assert "uv sync --frozen" in text
    assert "USER observatory" in text
