"""The pieces behind the login back-off and the host allow-list, on their own (a fake clock, no server)."""

from __future__ import annotations

import pytest

from api.hosts import AllowedHosts, parse_host
from api.origin import same_origin
from core.throttle import LoginThrottle
from core.users import User, UserBook, hash_password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_back_off_starts_at_the_limit_and_doubles_up_to_the_cap():
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, base_seconds=10, max_seconds=35, clock=clock)
    for _ in range(2):
        throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.9") is None
    throttle.failed("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.9") == 10  # the name is locked, from any address
    assert throttle.retry_after("bob", "10.0.0.1") == 10  # and so is the address, for any name
    assert throttle.retry_after("bob", "10.0.0.9") is None
    clock.now += 11
    throttle.failed("alice", "10.0.0.2")
    assert throttle.retry_after("alice", "10.0.0.9") == 20
    clock.now += 21
    throttle.failed("alice", "10.0.0.3")
    assert throttle.retry_after("alice", "10.0.0.9") == 35  # capped


def test_success_clears_the_name_not_the_address_and_old_failures_are_forgotten():
    clock = Clock()
    throttle = LoginThrottle(max_failures=2, base_seconds=10, forget_seconds=60, clock=clock)
    throttle.failed("alice", "10.0.0.1")
    throttle.succeeded("alice")
    throttle.failed("alice", "10.0.0.2")
    assert throttle.retry_after("alice", "10.0.0.9") is None  # 1 failure since her success
    throttle.failed("carol", "10.0.0.1")
    assert throttle.retry_after("dave", "10.0.0.1") == 10  # the address kept counting
    clock.now += 61
    throttle.failed("alice", "10.0.0.5")
    assert throttle.retry_after("alice", "10.0.0.9") is None  # the earlier failure was forgotten


def test_unknown_names_are_checked_against_a_hash_of_the_same_cost():
    book = UserBook([User("alice", hash_password("pw", iterations=1234)), User("bob", "plain")])
    assert book._stand_in.iterations == 1234
    assert not book.authenticate("nobody", "pw") and not book.authenticate("alice", "nope")
    assert book.authenticate("alice", "pw") and book.authenticate("bob", "plain")
    assert not book.authenticate("bob", "plai") and not book.authenticate("bob", "plainer")


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("127.0.0.1:7860", ("127.0.0.1", 7860)),
        ("LocalHost", ("localhost", None)),
        ("[::1]:80", ("::1", 80)),
        ("studio.example.com.", ("studio.example.com", None)),
        ("127.0.0.1:7860.evil.example", None),
        ("a b", None),
        ("", None),
        ("[::1", None),
        ("host:99999", None),
        ("host:", None),
    ],
)
def test_host_headers_are_parsed_strictly(header, parsed):
    assert parse_host(header) == parsed


def test_allowed_hosts_match_names_suffixes_and_a_late_share_host():
    hosts = AllowedHosts(["studio.example.com", "*.team.example"])
    assert hosts.allows("localhost:7860") and hosts.allows("[::1]:7860") and hosts.allows("127.0.0.1")
    assert hosts.allows("studio.example.com:443") and hosts.allows("pc.team.example")
    assert not hosts.allows("team.example") and not hosts.allows("rebind.attacker.example:7860")
    assert not hosts.allows("abc.gradio.live")
    hosts.add("abc.gradio.live")  # known once the share link is up
    assert hosts.allows("abc.gradio.live")
    assert AllowedHosts(["*"]).allows("anything.example")


def test_odd_origins_are_never_the_same_origin():
    assert same_origin("http://127.0.0.1:7860", "127.0.0.1:7860")
    assert same_origin("http://[::1]:7860", "[::1]:7860")
    for origin in ("http://127.0.0.1:7860.evil.example", "http://[::1", "null", "http://127.0.0.1:99999"):
        assert not same_origin(origin, "127.0.0.1:7860")


def test_serving_the_network_answers_to_this_computers_addresses_and_name():
    import socket

    from app import lan_address

    listening = AllowedHosts.for_server("127.0.0.1", listen=True)
    assert listening.allows(f"{lan_address()}:7860") and listening.allows(socket.gethostname())
    local = AllowedHosts.for_server("127.0.0.1", listen=False)
    assert local.allows("127.0.0.1:7860") and not local.allows(socket.gethostname() + ".local")
