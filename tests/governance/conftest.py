"""Departments, cases and receivers of the escalation tests, for the rules that govern what they receive."""

from __future__ import annotations

from tests.escalation.conftest import api, clock, departments

__all__ = ["api", "clock", "departments"]
