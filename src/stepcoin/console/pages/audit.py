"""Console pages: audit (to be written)."""

from __future__ import annotations

from fastapi import APIRouter

from stepcoin.console.web import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
