"""The admin console at /admin: server-rendered pages over the same services as the API."""

from __future__ import annotations

from types import ModuleType

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from stepcoin.console import auth_pages
from stepcoin.console.pages import (
    achievements,
    audit,
    budgets,
    campaigns,
    challenges,
    earn_rules,
    groups,
    orders,
    overview,
    products,
    referrals,
    reports,
    review,
    settings,
    users,
)
from stepcoin.console.web import HERE, PREFIX, install_console_errors


def page_modules() -> list[ModuleType]:
    """Every module with a console `router`: sign-in and account, then one per section."""
    return [
        auth_pages,
        overview,
        review,
        users,
        products,
        orders,
        achievements,
        earn_rules,
        budgets,
        campaigns,
        challenges,
        referrals,
        reports,
        groups,
        settings,
        audit,
    ]


def install_console(app: FastAPI) -> None:
    """Mount the console's pages, its static files and its error pages on the app."""
    for module in page_modules():
        app.include_router(module.router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    install_console_errors(app)
