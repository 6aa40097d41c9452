"""The registry client's address handling and credential sources (no engine needed)."""

from __future__ import annotations

import pytest

from factory.core.registry import Registry, credentials, is_loopback


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1:5555", True),
        ("127.0.0.2:5000", True),
        ("localhost:5000", True),
        ("[::1]:5555", True),
        ("[::1]", True),
        ("registry.example.com", False),
        ("registry.example.com:443", False),
        ("10.0.0.5:5000", False),
        ("[2001:db8::1]:5000", False),
    ],
)
def test_loopback_addresses_are_spoken_to_in_plain_http(address, loopback):
    assert is_loopback(address) is loopback
    assert Registry(address).base.startswith("http://" if loopback else "https://")


def test_credentials_from_the_environment_win_over_docker_login():
    called = []

    def docker_login(address):
        called.append(address)
        return ("docker-user", "docker-pass")

    env = {"FACTORY_REGISTRY_USER": "u", "FACTORY_REGISTRY_PASSWORD": "p"}
    assert credentials("r.example:5000", env, docker_login) == ("u", "p")
    assert called == []
    assert credentials("r.example:5000", {}, docker_login) == ("docker-user", "docker-pass")
    assert called == ["r.example:5000"]
    assert credentials("r.example:5000", {}, None) is None
