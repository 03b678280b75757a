"""A mini program user's phone number (placeholder: being written)."""

from __future__ import annotations

from typing import Any

from flask import Request

from .appapi import AppAPI
from .runtime import Runtime


def read_phone_request(request: Request) -> dict[str, str]:
    raise NotImplementedError


def share_phone_number(runtime: Runtime, api: AppAPI, user: Any, payload: dict[str, str]) -> dict[str, str]:
    raise NotImplementedError
