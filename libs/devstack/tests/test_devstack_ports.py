"""The free-port check of `cortex up` (cortex_dev.embedded.port_is_free)."""

from __future__ import annotations

import socket
import time

import uvicorn

from cortex_dev.embedded import free_port, port_is_free


def _time_wait_on(port: int) -> None:
    """Leave a connection of a closed server in TIME_WAIT on ``port``, as a stopped gateway
    does: the server side closes first, then the listener goes away."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first: its side of the connection enters TIME_WAIT
    client.recv(1)  # the client sees the end of the stream ...
    client.close()  # ... and closes its side
    listener.close()
    time.sleep(0.05)


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free() -> None:
    port = free_port()
    _time_wait_on(port)
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:  # the situation of the issue: a bind without SO_REUSEADDR is refused
        plain.bind(("127.0.0.1", port))
        in_time_wait = False
    except OSError:
        in_time_wait = True
    finally:
        plain.close()
    assert in_time_wait, "the test did not leave the port in TIME_WAIT"
    assert port_is_free(port)
    server_socket = uvicorn.Config(app=None, host="127.0.0.1", port=port).bind_socket()
    server_socket.close()  # and the gateway's server does bind it


def test_a_port_with_a_listener_is_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)
