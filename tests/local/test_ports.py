"""Ports kept across restarts: a port whose last connections are in TIME_WAIT is free for a server again."""

from __future__ import annotations

import socket
from pathlib import Path

from canaryflow.local.procs import free_port, port_is_free


def served_once() -> int:
    """A port that had a listener and one connection, closed by the server first (so it sits in TIME_WAIT)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port: int = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    server_side, _ = listener.accept()
    server_side.close()  # the active close: TIME_WAIT is on this side, the runtime's
    listener.close()
    client.close()
    return port


def test_a_port_in_time_wait_is_free_for_a_server() -> None:
    port = served_once()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:  # the old check: a bind without SO_REUSEADDR
        try:
            plain.bind(("127.0.0.1", port))
            old_verdict = True
        except OSError:
            old_verdict = False
    assert old_verdict is False  # why ports changed after every restart
    assert port_is_free(port)


def test_a_port_something_listens_on_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert not port_is_free(listener.getsockname()[1])


def test_ports_handed_to_processes_are_outside_the_range_outgoing_connections_take() -> None:
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(20_000 <= port < max(ephemeral, 21_000) for port in ports), sorted(ports)
    assert all(port_is_free(port) for port in ports)
    # An outgoing connection's local port comes from the ephemeral range: never one free_port() hands out.
    listener = socket.create_server(("127.0.0.1", 0))
    with socket.create_connection(listener.getsockname()) as client:
        assert client.getsockname()[1] >= ephemeral
    listener.close()
