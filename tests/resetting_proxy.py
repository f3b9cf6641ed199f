"""A TCP relay to a local port whose connections can be ended with a reset, as a broker node
killed under its clients ends theirs. Its own process, apart from the test's green threads:

    proxy = subprocess.Popen([sys.executable, "-m", "tests.resetting_proxy", "5672"], ...)

prints the port it listens on; each line `reset` on its stdin resets every connection relayed
so far (answered `reset` once done); end of input stops it."""

import contextlib
import socket
import struct
import sys
import threading

pairs: list[tuple[socket.socket, socket.socket, list[threading.Thread]]] = []
lock = threading.Lock()


def pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)


def accept(listener: socket.socket, upstream_port: int) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        pumps = [
            threading.Thread(target=pump, args=(source, sink), daemon=True)
            for source, sink in ((client, upstream), (upstream, client))
        ]
        with lock:
            pairs.append((client, upstream, pumps))
        for thread in pumps:
            thread.start()


def reset() -> None:
    with lock:
        while pairs:
            client, upstream, pumps = pairs.pop()
            with contextlib.suppress(OSError):
                # The pumps reading the two sockets are woken first (a socket closed under a
                # thread reading it is not let go until the read returns); `SHUT_RD` sends
                # nothing, so the client still gets the reset and not a FIN.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.shutdown(socket.SHUT_RD)
                upstream.shutdown(socket.SHUT_RDWR)
            for thread in pumps:
                thread.join(timeout=5)
            client.close()  # a reset: linger on, with no time
            upstream.close()


def main() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=accept, args=(listener, int(sys.argv[1])), daemon=True).start()
    print(listener.getsockname()[1], flush=True)
    for line in sys.stdin:
        if line.strip() == "reset":
            reset()
            print("reset", flush=True)


if __name__ == "__main__":
    main()
