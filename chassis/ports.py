"""Listening sockets that refuse a port already served, and the process serving it.

eventlet's `listen` (which nameko's WebServer calls) sets SO_REUSEPORT on every socket it binds,
so a second process started on a port already served binds it without a word, and the kernel
splits the connections between the two: old code and new answering the same URL. Here a taken
port is an error that names the process holding it; sharing a port is something a setting asks
for (`HTTP_REUSE_PORT`), as a deployment running several processes behind one port would.
"""

import errno
import os
import socket


class PortTaken(RuntimeError):
    def __init__(self, host: str, port: int):
        self.port = port
        self.holders = holders(port)
        held = ", ".join(f"pid {pid} ({command})" for pid, command in self.holders)
        super().__init__(f"{host}:{port} is already in use" + (f" by {held}" if held else ""))

    def refusal(self, service: str) -> str:
        """The one line that says why `service` does not start, and what to do."""
        return (
            f"{service} not started: {self}; stop that process or set "
            f"{service.upper()}_HTTP_PORT to a free port"
        )


def listen(host: str, port: int, reuse_port: bool = False, backlog: int = 50) -> socket.socket:
    """A TCP socket listening on host:port (green once eventlet has patched `socket`).

    SO_REUSEADDR only lets a restarted server bind past connections left in TIME_WAIT; unlike
    SO_REUSEPORT it never lets two sockets listen on one port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortTaken(host, port) from None
        raise
    return sock


def holders(port: int) -> list[tuple[int, str]]:
    """(pid, command line) of each process with a socket listening on `port`, as far as Linux's
    /proc tells this user; empty where it cannot tell (another system, another user's process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)  # the header
                for row in rows:
                    fields = row.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # LISTEN
                        inodes.add(f"socket:[{inode}]")
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    found = []
    if not inodes:
        return found
    for pid in sorted(int(name) for name in os.listdir("/proc") if name.isdigit()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    found.append((pid, _command(pid)))
                    break
            except OSError:
                continue
    return found


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read().rstrip(b"\0").decode(errors="replace").split("\0")
    except OSError:
        return "?"
    argv[0] = os.path.basename(argv[0])
    command = " ".join(argv)
    return command if len(command) <= 80 else command[:77] + "..."
