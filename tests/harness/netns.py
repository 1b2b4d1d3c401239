"""Two Linux network namespaces joined by a veth pair, for tests that need a
client whose address is not 127.0.0.1 (a policy's `cidrs` judged from the
client's real address). Nothing is added to the root namespace: the servers
run in one namespace (its loopback and its end of the veth), the client in
the other, so addresses cannot clash with the host's and a listener on `::`
is reachable only from these two namespaces. Needs root and `ip netns`.

    net = NetnsPair()           # raises NetnsUnavailable with the reason
    test.addCleanup(net.close)  # deletes both namespaces (and so the veth)
    Cluster(3, netns=net.server, listen_host=net.any_host, ip_sans=net.server_ips)
    subprocess.run(net.exec_in(net.client) + ["mayfly", ...])
"""
import os
import shutil
import subprocess


class NetnsUnavailable(Exception):
    """Why namespaces cannot be made here (not root, no `ip`, refused)."""


def _ip(*args, error=RuntimeError):
    p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
    if p.returncode:
        raise error("ip %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


class NetnsPair:
    """server side: 10.231.0.1/30 and fd31:231::1/64; client side: .2 and ::2
    (a /30 and a ULA /64 that exist only inside these namespaces). has_v6 is
    False where the kernel has IPv6 off; only the namespaces' creation itself
    failing raises NetnsUnavailable (a reason to skip), anything after it
    raises RuntimeError (a failure)."""
    server_v4, client_v4, v4_net = "10.231.0.1", "10.231.0.2", "10.231.0.0/30"
    server_v6, client_v6, v6_net = "fd31:231::1", "fd31:231::2", "fd31:231::/64"

    def __init__(self, tag=None):
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        if not shutil.which("ip"):
            raise NetnsUnavailable("no `ip` (iproute2)")
        tag = tag or "%d-%s" % (os.getpid(), os.urandom(2).hex())
        self.server = "mf-srv-" + tag
        self.client = "mf-cli-" + tag
        self.made = []
        self.has_v6 = True
        try:
            for ns in (self.server, self.client):
                _ip("netns", "add", ns, error=NetnsUnavailable)
                self.made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            # Made in the server namespace, one end moved: no name in the root's.
            _ip("-n", self.server, "link", "add", "veth0", "type", "veth", "peer", "name",
                "veth1")
            _ip("-n", self.server, "link", "set", "veth1", "netns", self.client)
            for ns, dev, v4, v6 in ((self.server, "veth0", self.server_v4, self.server_v6),
                                    (self.client, "veth1", self.client_v4, self.client_v6)):
                _ip("-n", ns, "addr", "add", v4 + "/30", "dev", dev)
                # nodad: usable at once, no duplicate-address wait (nobody else is here).
                try:
                    _ip("-n", ns, "-6", "addr", "add", v6 + "/64", "dev", dev, "nodad")
                except RuntimeError:
                    self.has_v6 = False
                _ip("-n", ns, "link", "set", dev, "up")
        except BaseException:
            self.close()
            raise

    @property
    def server_ips(self):
        return (self.server_v4, self.server_v6) if self.has_v6 else (self.server_v4,)

    @property
    def any_host(self):
        """The listen host that takes both families here (dual-stack `::`)."""
        return "::" if self.has_v6 else "0.0.0.0"

    @staticmethod
    def exec_in(ns):
        """The argv prefix that runs a program inside namespace ns."""
        return ["ip", "netns", "exec", ns]

    def close(self):
        """Deletes the namespaces this object made (idempotent); the veth
        goes with them. Processes still inside keep running: stop them first."""
        while self.made:
            subprocess.run(["ip", "netns", "del", self.made.pop()], capture_output=True)
