"""A policy's `cidrs` condition judged from the client's real address through
a request forwarded by a follower, with a client that is not on 127.0.0.1.

test_authz_proofs.ForwardedCidr runs every client on 127.0.0.1, the address
of the peer links too, so it cannot tell "the leader judged the client's
address" from "everyone is 127.0.0.1". Here the three nodes run in one
network namespace (peers on its 127.0.0.1, client listeners on `::`) and the
client in another, joined by a veth pair (tests/harness/netns.py): the client
is 10.231.0.2 (and fd31:231::2), the peer link stays 127.0.0.1. A policy that
allows only 10.231.0.0/30 and fd31:231::/64 lets a write entering a follower
pass the leader's decision at proposal only if the leader judged the address
the envelope carries, not the peer link's. Needs root and `ip netns`."""
import ipaddress
import json
import os
import unittest

from tests.harness.cluster import Cluster, wait_for
from tests.harness.netns import NetnsPair, NetnsUnavailable

PATH = "kv/data/cidr/x"


def lines_of(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def host_of(client_addr):
    """The IP of an audit record's "ip:port" / "[ip]:port", an IPv4-mapped
    IPv6 address (a dual-stack listener's view of an IPv4 client) as IPv4."""
    host = client_addr.rsplit(":", 1)[0].strip("[]")
    ip = ipaddress.ip_address(host)
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


class CidrFromAnotherAddress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.net = NetnsPair()
        except NetnsUnavailable as e:
            raise unittest.SkipTest(str(e))
        net = cls.net
        try:
            cls.c = c = Cluster(3, netns=net.server, listen_host=net.any_host,
                                 ip_sans=net.server_ips)
        except BaseException:
            net.close()
            raise
        try:
            c.start()
            c.init()
            c.wait_unsealed()
            cls.tmpl = os.path.join(c.dir, "audit-{node}.log")
            cls.ok(c.cli("audit", "enable", "-type", "file", "-path", cls.tmpl, "a"))
            for n in c.nodes:
                wait_for(lambda: os.path.exists(cls.tmpl.format(node=n.id)), 10,
                         "audit file %d" % n.id)
            # The CIDR rule is the most specific match for cidr/*: when its
            # condition fails, the broader read on kv/data/* must not apply.
            cls.ok(c.cli("policy", "write", "veth", "-", stdin=json.dumps({"path": {
                "kv/data/cidr/*": {"capabilities": ["create", "update", "read"],
                                   "conditions": {"cidrs": [net.v4_net, net.v6_net]}},
                "kv/data/*": {"capabilities": ["read"]}}})))
            made = cls.ok(c.cli("token", "create", "-policy", "veth", "-ttl", "1h"))
            cls.tok, cls.accessor = made["token"], made["accessor"]
            cls.ok(c.cli("kv", "put", "open/y", "v=1"))
            cls.leader = c.leader()
            cls.follower = next(n for n in c.nodes if n is not cls.leader)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()  # the processes stop before their namespace goes
        cls.net.close()

    @staticmethod
    def ok(rc_out, what=""):
        rc, out = rc_out
        assert rc == 0, "%s: %s" % (what, out)
        return out

    def from_ns(self, *args, host):
        """The CLI in the client namespace, reaching the follower at host."""
        return self.c.cli(*args, addr=self.follower.api_addr_on(host), token=self.tok,
                          netns=self.net.client)

    def from_lo(self, *args):
        """The same token from 127.0.0.1, through the same follower."""
        return self.follower.cli(*args, token=self.tok)

    def denied(self, rc_out, what):
        rc, out = rc_out
        self.assertEqual((rc, out.get("error", {}).get("code")), (2, "PERMISSION_DENIED"),
                         "%s: %s" % (what, out))

    def decisions(self, node, op, path, allowed):
        """node's audit records of the test token's decisions on op and path
        (the record that names the policy and rule; the response record
        after it carries only the outcome)."""
        return [l for l in lines_of(self.tmpl.format(node=node.id))
                if l.get("operation") == op and l.get("path") == path
                and l.get("identity", {}).get("accessor") == self.accessor
                and "policy" in l.get("decision", {})
                and bool(l["decision"].get("allowed")) == allowed]

    def assert_decided(self, recs, host, allowed):
        """Each record names host as the client and says the CIDR rule decided."""
        for rec in recs:
            self.assertEqual(host_of(rec["client_addr"]), host, rec)
            self.assertEqual((rec["decision"]["allowed"], rec["decision"]["policy"],
                              rec["decision"].get("rule")), (allowed, "veth", "kv/data/cidr/*"),
                             rec)

    def test_ipv4_client_through_a_follower(self):
        """From 10.231.0.2 a write and a read through the follower are allowed
        (the write also by the leader, whose peer link is 127.0.0.1); the same
        token from 127.0.0.1 is denied both, and the broader read rule does
        not apply. The audit records on the leader and the follower name
        10.231.0.2 for the forwarded write, the follower's 127.0.0.1 for the
        refused one."""
        net, c = self.net, self.c
        self.ok(self.from_ns("kv", "put", "cidr/x", "v=4", host=net.server_v4), "write from ns")
        self.assertEqual(self.ok(self.from_ns("kv", "get", "cidr/x", host=net.server_v4),
                                 "read from ns")["data"], {"v": "4"})
        self.denied(self.from_lo("kv", "put", "cidr/x", "v=lo"), "write from 127.0.0.1")
        self.denied(self.from_lo("kv", "get", "cidr/x"), "read from 127.0.0.1")
        # The broader rule holds elsewhere: the token and the loopback path work.
        self.assertEqual(self.ok(self.from_lo("kv", "get", "open/y"))["data"], {"v": "1"})
        self.assertEqual(self.ok(c.cli("kv", "get", "cidr/x"))["data"], {"v": "4"})

        # The follower's decision and the leader's, at proposal, where the
        # only connection from the follower is the peer link from 127.0.0.1.
        at_follower = wait_for(lambda: self.decisions(self.follower, "kv.put", PATH, True), 5,
                               "the follower's decision on the allowed write")
        at_leader = wait_for(lambda: self.decisions(self.leader, "kv.put", PATH, True), 5,
                             "the leader's decision on the allowed write")
        self.assertEqual((len(at_follower), len(at_leader)), (1, 1), (at_follower, at_leader))
        self.assert_decided(at_follower + at_leader, net.client_v4, True)
        self.assertEqual(at_leader[0]["node"], str(self.leader.id), at_leader[0])
        self.assertEqual(at_leader[0]["record_id"], at_follower[0]["record_id"])
        reads = self.decisions(self.follower, "kv.get", PATH, True)
        self.assertEqual(len(reads), 1, reads)
        self.assert_decided(reads, net.client_v4, True)

        # Refused on entry, from 127.0.0.1, by the CIDR rule (not by "no rule").
        for op in ("kv.put", "kv.get"):
            refused = wait_for(lambda: self.decisions(self.follower, op, PATH, False), 5,
                               "the follower's record of the refused %s" % op)
            self.assertEqual(len(refused), 1, refused)
            self.assert_decided(refused, "127.0.0.1", False)
        # The leader never saw the refused write, so never applied it.
        self.assertEqual(self.decisions(self.leader, "kv.put", PATH, False), [])

    def test_ipv6_client_through_a_follower(self):
        """The same over IPv6: fd31:231::2 is in fd31:231::/64."""
        net = self.net
        if not net.has_v6:
            self.skipTest("IPv6 is off in this kernel")
        self.ok(self.from_ns("kv", "put", "cidr/v6", "v=6", host=net.server_v6), "write v6")
        self.assertEqual(self.ok(self.from_ns("kv", "get", "cidr/v6", host=net.server_v6),
                                 "read v6")["data"], {"v": "6"})
        path = "kv/data/cidr/v6"
        for node in (self.follower, self.leader):
            recs = wait_for(lambda: self.decisions(node, "kv.put", path, True), 5,
                            "node %d's decision on the v6 write" % node.id)
            self.assertEqual(len(recs), 1, recs)
            self.assert_decided(recs, net.client_v6, True)
        self.denied(self.from_lo("kv", "get", "cidr/v6"), "read v6 path from 127.0.0.1")


if __name__ == "__main__":
    unittest.main()
