"""Whose address a request comes from, behind trusted proxies or not (`chassis.web`)."""

import ipaddress

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from chassis.web import client_address

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    builder = EnvironBuilder(headers=headers, environ_base={"REMOTE_ADDR": peer})
    return Request(builder.get_environ())


def test_without_trusted_proxies_the_connection_counts_whatever_the_header_says():
    assert client_address(request("203.0.113.9", "198.51.100.1"), []) == "203.0.113.9"


def test_a_client_connecting_directly_cannot_choose_its_address():
    assert client_address(request("203.0.113.9", "198.51.100.1"), PROXIES) == "203.0.113.9"


def test_behind_proxies_the_nearest_untrusted_hop_counts():
    forged_then_real = "198.51.100.1, 203.0.113.9, 10.1.2.3"
    assert client_address(request("10.0.0.5", forged_then_real), PROXIES) == "203.0.113.9"
    assert client_address(request("10.0.0.5", "2001:db8::7, fd00::1"), PROXIES) == "2001:db8::7"


def test_garbage_in_the_header_stops_the_walk_and_a_header_of_proxies_gives_the_proxy():
    assert client_address(request("10.0.0.5", "203.0.113.9, not-an-ip"), PROXIES) == "not-an-ip"
    assert client_address(request("10.0.0.5", "10.0.0.1, 10.0.0.2"), PROXIES) == "10.0.0.5"
    assert client_address(request("10.0.0.5"), PROXIES) == "10.0.0.5"
