"""When the product loads the Shopify stand-in: development, demo and tests only, lazily, never in
production; a missing stand-in is an error that names the pip command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

import shopify_standin
from stepcoin import config
from stepcoin.config import Settings
from stepcoin.shop import runtime
from stepcoin.shop.shopify import ShopifyClient
from stepcoin.shop.webhook_signing import verify

SECRET = "a-production-jwt-secret-of-forty-characters"
REAL_SHOP = {
    "shopify_shop_domain": "acme-running.myshopify.com",
    "shopify_access_token": "shpat_0123456789abcdef0123456789abcdef",
    "shopify_webhook_secrets": ["shpss_real_app_secret"],
}
ROOT = Path(__file__).resolve().parents[2]
NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing"  # never connected to

# For each settings in turn: creates the app, imports every stepcoin module, makes a Shopify
# client; prints which modules of the stand-in or of graphql-core the process holds by then.
LOADED_MODULES = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import stepcoin
    from stepcoin.config import Settings
    from stepcoin.main import create_app
    from stepcoin.shop.runtime import NoShopConfigured, shopify_client, webhook_secrets

    seen = []
    for options in json.loads(sys.argv[1]):
        settings = Settings(**options)
        create_app(settings, run_worker=False)
        for module in pkgutil.walk_packages(stepcoin.__path__, "stepcoin."):
            if not module.name.startswith("stepcoin.migrations"):  # alembic's env runs
                importlib.import_module(module.name)
        try:
            shopify_client(settings)
        except NoShopConfigured:
            pass
        webhook_secrets(settings)
        seen.append(sorted(
            name for name in sys.modules if name.split(".")[0] in {"shopify_standin", "graphql"}
        ))
    print(json.dumps(seen))
    """
)


def test_a_production_process_never_imports_the_standin_or_graphql(tmp_path: Path) -> None:
    """In a fresh interpreter, so that what other tests imported does not count. Production
    with a real shop, then without a shop; then, as the control that the check sees the
    stand-in when it is there, development without a shop."""
    production = {"env": "production", "jwt_secret": SECRET, "database_url": NOWHERE}
    runs = [
        {**production, **REAL_SHOP},
        production,
        # its own data directory: the generated signing secret is written there
        {"env": "development", "database_url": NOWHERE, "data_dir": str(tmp_path)},
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPCOIN_")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES, json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with_shop, without_shop, development = json.loads(result.stdout.strip().splitlines()[-1])
    assert with_shop == []
    assert without_shop == []
    assert "shopify_standin" in development
    assert "graphql" in development


def production(**shopify: object) -> Settings:
    return Settings(env="production", jwt_secret=SECRET, **shopify)


@pytest.mark.parametrize(
    ("shopify", "message"),
    [
        ({"shopify_api_url": "http://127.0.0.1:8787/admin/api/2025-01/graphql.json"}, "API_URL"),
        ({**REAL_SHOP, "shopify_api_url": "https://proxy.example/graphql.json"}, "API_URL"),
        ({"shopify_access_token": "shpat_real"}, "go together"),
        (
            {"shopify_shop_domain": "acme.myshopify.com", "shopify_webhook_secrets": ["s"]},
            "go together",
        ),
        ({**REAL_SHOP, "shopify_access_token": config.STANDIN_ACCESS_TOKEN}, "public values"),
        ({**REAL_SHOP, "shopify_shop_domain": config.STANDIN_SHOP_DOMAIN}, "public values"),
        (
            {**REAL_SHOP, "shopify_webhook_secrets": ["new", config.STANDIN_WEBHOOK_SECRET]},
            "public values",
        ),
        ({**REAL_SHOP, "shopify_webhook_secrets": []}, "WEBHOOK_SECRETS is required"),
    ],
)
def test_production_refuses_to_start_with_the_standin(
    shopify: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        production(**shopify)


def test_production_has_a_real_shop_or_none() -> None:
    real = production(**REAL_SHOP)
    assert real.shopify_shop_configured and not real.uses_shopify_standin
    client = runtime.shopify_client(real)
    assert isinstance(client, ShopifyClient)
    assert client.endpoint == "https://acme-running.myshopify.com/admin/api/2025-01/graphql.json"
    assert runtime.webhook_secrets(real) == ["shpss_real_app_secret"]

    none = production()
    assert not none.shopify_shop_configured and not none.uses_shopify_standin
    with pytest.raises(runtime.NoShopConfigured, match="no Shopify shop is configured"):
        runtime.shopify_client(none)
    assert runtime.webhook_secrets(none) == []  # every webhook is refused
    with pytest.raises(RuntimeError, match="never used in production"):
        runtime.load_standin(none)


def test_development_without_a_shop_uses_the_standin_with_the_demo_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "_standin", None)
    development = Settings(env="development")
    assert development.uses_shopify_standin
    assert runtime.webhook_secrets(development) == [config.STANDIN_WEBHOOK_SECRET]
    standin = runtime.local_standin(development)
    assert isinstance(standin, shopify_standin.ShopifyStandIn)
    assert standin.shop_domain == config.STANDIN_SHOP_DOMAIN
    assert len(standin.products) == 6


def test_a_missing_standin_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shopify_standin", None)  # makes the import fail
    monkeypatch.setattr(runtime, "_standin", None)
    development = Settings(env="development")
    with pytest.raises(runtime.StandInNotInstalled, match=r"pip install -e '\.\[standin\]'"):
        runtime.shopify_client(development)
    with pytest.raises(runtime.StandInNotInstalled):
        runtime.require_standin(development)
    # a stand-in in another process, or a real shop, needs no local package
    runtime.require_standin(Settings(env="development", shopify_api_url="http://127.0.0.1:1/x"))
    runtime.require_standin(Settings(env="development", **REAL_SHOP))


# Runs `stepcoin <command>` for each command with graphql-core hidden (the extra not
# installed); prints each exit code and error output.
MISSING_STANDIN = textwrap.dedent(
    """
    import json, sys

    sys.modules["graphql"] = None  # an import of it fails, as when it is not installed
    from typer.testing import CliRunner
    from stepcoin.cli import app

    runner = CliRunner()
    outcomes = {}
    for command in sys.argv[1:]:
        result = runner.invoke(app, [command])
        outcomes[command] = [result.exit_code, result.stderr, repr(result.exception)]
    print(json.dumps(outcomes))
    """
)


def test_the_cli_says_how_to_install_a_missing_standin() -> None:
    """One clear message and exit 1, before any database is touched, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPCOIN_")}
    env.update({"DATABASE_URL": NOWHERE, "STEPCOIN_LOG_LEVEL": "WARNING"})
    commands = ["serve", "worker", "demo"]
    result = subprocess.run(
        [sys.executable, "-c", MISSING_STANDIN, *commands],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    for command in commands:
        exit_code, stderr, exception = outcomes[command]
        assert exit_code == 1, (command, stderr, exception)
        assert "pip install -e '.[standin]'" in stderr, command
        assert "Traceback" not in stderr


def test_the_standin_and_the_product_agree_on_its_identity() -> None:
    assert shopify_standin.DEFAULT_SHOP_DOMAIN == config.STANDIN_SHOP_DOMAIN
    assert shopify_standin.DEFAULT_ACCESS_TOKEN == config.STANDIN_ACCESS_TOKEN
    body = b'{"id": 1}'
    signature = shopify_standin.sign(body, config.STANDIN_WEBHOOK_SECRET)
    assert verify(body, signature, [config.STANDIN_WEBHOOK_SECRET])


def test_graphql_core_is_no_production_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("graphql")]
    assert [d for d in project["optional-dependencies"]["standin"] if d.startswith("graphql")]
    assert "stepcoin[standin]" in project["optional-dependencies"]["test"]
    assert 'ensure_venv "[standin]"' in (ROOT / "scripts" / "start.sh").read_text()
