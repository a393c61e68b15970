"""Hosts for end-to-end tests: Linux network namespaces joined by veth links on a bridge.

Each host is a namespace with one interface (`eth0`, an address on a private /24) whose
other end sits on a bridge in a namespace of its own, so nothing of the machine's own
network is touched. `link(host, up)` takes a host's link down or up, as a cable pulled
and plugged back. Everything is removed on `close`, processes first.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Sequence


class NamespaceUnavailableError(Exception):
    """Namespaces cannot be made here (not root, no `ip`, no kernel support)."""


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {out.stderr.strip()}")


class NamespaceLab:
    def __init__(self, hosts: Sequence[str]) -> None:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise NamespaceUnavailableError("network namespaces need root and iproute2")
        tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
        self.prefix = f"soma{tag}"
        self.subnet = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
        self.hosts = list(hosts)
        self.bridge = f"{self.prefix}-br"
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        try:
            self._build()
        except (RuntimeError, OSError) as e:
            self.close()
            raise NamespaceUnavailableError(str(e)) from e

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{self.hosts.index(host)}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{self.hosts.index(host) + 1}"

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("link", "set", "lo", "up", netns=name)

    def _build(self) -> None:
        self._add_namespace(self.bridge)
        _ip("link", "add", "br0", "type", "bridge", netns=self.bridge)
        _ip("link", "set", "br0", "up", netns=self.bridge)
        for i, host in enumerate(self.hosts):
            ns = self.namespace(host)
            self._add_namespace(ns)
            inside, outside = f"{self.prefix}h{i}", f"{self.prefix}b{i}"
            _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "netns", self.bridge)
            _ip("link", "set", inside, "name", "eth0", netns=ns)
            _ip("addr", "add", f"{self.address(host)}/24", "dev", "eth0", netns=ns)
            _ip("link", "set", "eth0", "up", netns=ns)
            _ip("link", "set", outside, "master", "br0", netns=self.bridge)
            _ip("link", "set", outside, "up", netns=self.bridge)

    def popen(self, host: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.namespace(host), *argv], **kwargs
        )
        self._procs.append(proc)
        return proc

    def run(
        self, host: str, argv: Sequence[str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace(host), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def link(self, host: str, up: bool) -> None:
        _ip("link", "set", "eth0", "up" if up else "down", netns=self.namespace(host))

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self._namespaces.clear()
