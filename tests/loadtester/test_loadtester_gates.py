"""Manual gates: closed until opened, per canary; rollback gates are separate from promotion gates."""

from __future__ import annotations

import httpx
import pytest

from tests.demoapp.services import Service
from tests.loadtester.conftest import hook


def post(tester: Service, path: str, name: str = "gated") -> httpx.Response:
    return httpx.post(f"{tester.url}{path}", json=hook({}, name=name))


def test_approve_and_halt_answer_fixed(tester: Service) -> None:
    assert (post(tester, "/gate/approve").status_code, post(tester, "/gate/halt").status_code) == (200, 403)


@pytest.mark.parametrize("prefix", ["/gate", "/rollback"])
def test_gate_is_closed_until_opened_and_closes_again(tester: Service, prefix: str) -> None:
    name = f"cycle{prefix.replace('/', '-')}"
    closed = post(tester, f"{prefix}/check", name).status_code
    opened = post(tester, f"{prefix}/open", name).status_code
    approved = post(tester, f"{prefix}/check", name)
    closing = post(tester, f"{prefix}/close", name).status_code

    assert (closed, opened, approved.status_code, closing) == (403, 202, 200, 202)
    assert approved.text == "Approved"
    assert post(tester, f"{prefix}/check", name).status_code == 403


def test_gates_are_per_canary(tester: Service) -> None:
    post(tester, "/gate/open", "frontend")

    assert post(tester, "/gate/check", "frontend").status_code == 200
    assert post(tester, "/gate/check", "backend").status_code == 403
    other_namespace = httpx.post(f"{tester.url}/gate/check", json=hook({}, name="frontend", namespace="dev"))
    assert other_namespace.status_code == 403


def test_opening_a_gate_does_not_ask_for_a_rollback(tester: Service) -> None:
    post(tester, "/gate/open", "promoted")

    assert post(tester, "/rollback/check", "promoted").status_code == 403


def test_gate_check_needs_a_payload(tester: Service) -> None:
    assert httpx.post(f"{tester.url}/gate/check", content=b"nope").status_code == 400
