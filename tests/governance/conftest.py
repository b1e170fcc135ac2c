"""Departments, cases and receivers of the escalation tests, for the rules that govern what they receive."""

from __future__ import annotations

from tests.escalation.conftest import api, departments

__all__ = ["api", "departments"]
