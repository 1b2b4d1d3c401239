"""operator generate-root end to end on a key-file node (issue 11, must-have
5): with its root token revoked, the cluster gets a new working root token
from the key file's contents, encoded with a one-time pad only the initiator
holds; a wrong share, a wrong nonce and a second attempt are refused; cancel
ends the attempt."""
import os
import unittest

from tests.harness.cluster import Cluster


class GenerateRoot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(1).start()
        try:
            cls.c.init()
            cls.c.wait_unsealed()
        except BaseException:
            cls.c.cleanup()
            raise
        with open(cls.c.key_file) as f:
            cls.share = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def gr(self, *args):
        return self.c.cli("operator", "generate-root", *args, token=False)

    def refused(self, rc_out, code, text):
        rc, out = rc_out
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], code, out)
        self.assertIn(text, out["error"]["message"])
        self.assertNotIn(self.share, str(out))

    def start(self):
        rc, out = self.gr("-init")
        self.assertEqual(rc, 0, out)
        self.assertEqual(set(out), {"nonce", "otp", "threshold", "expire_at_ms"})
        self.assertEqual(out["threshold"], 1)
        return out

    def test_1_recovers_after_the_root_token_is_revoked(self):
        """The root token revokes itself; generate-root with a wrong share is
        refused, with the key file's contents yields a new root token that reads
        and writes."""
        old = self.c.token
        rc, out = self.c.cli("token", "revoke", old)
        self.assertEqual(rc, 0, out)
        rc, out = self.c.cli("token", "lookup", token=old)
        self.assertEqual(rc, 2, out)
        attempt = self.start()
        self.refused(self.gr("-nonce", attempt["nonce"], os.urandom(32).hex()),
                     "INVALID_ARGUMENT", "does not open the stored keyring")
        self.refused(self.gr("-nonce", "0" * 32, self.share), "INVALID_ARGUMENT", "nonce")
        rc, done = self.gr("-nonce", attempt["nonce"], self.share)
        self.assertEqual(rc, 0, done)
        self.assertEqual(done["progress"], 1)
        self.assertEqual(done["threshold"], 1)
        enc = done["encoded_root_token"]
        self.assertNotIn("mf.", enc)
        rc, dec = self.c.cli("operator", "generate-root", "-decode", enc, "-otp",
                             attempt["otp"], token=False)
        self.assertEqual(rc, 0, dec)
        root = dec["root_token"]
        self.assertNotEqual(root, old)
        rc, out = self.c.cli("token", "lookup", token=root)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["ttl_ms"], 0, out)  # root: no expiry
        rc, out = self.c.cli("policy", "list", token=root)  # beyond `default`
        self.assertEqual(rc, 0, out)
        rc, out = self.c.cli("kv", "put", "gr/x", "a=1", token=root)
        self.assertEqual(rc, 0, out)
        # The attempt ended with its token: the share again finds none.
        self.refused(self.gr("-nonce", attempt["nonce"], self.share), "INVALID_ARGUMENT",
                     "no generate-root attempt in progress")
        # Another attempt's OTP does not decode it.
        other = self.start()
        self.gr("-cancel")
        rc, out = self.c.cli("operator", "generate-root", "-decode", enc, "-otp", other["otp"],
                             token=False)
        self.assertEqual(rc, 1, out)
        self.c.token = root
        with open(self.c.nodes[0].log_path) as f:
            log = f.read()
        self.assertNotIn(self.share, log)
        self.assertNotIn(root, log)

    def test_2_cancel_and_one_attempt_at_a_time(self):
        """A second -init while one runs is refused; -cancel ends it, after which
        its nonce finds no attempt and a new -init starts."""
        attempt = self.start()
        self.refused(self.gr("-init"), "INVALID_ARGUMENT", "already in progress")
        rc, out = self.gr("-cancel")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out, {})
        self.refused(self.gr("-nonce", attempt["nonce"], self.share), "INVALID_ARGUMENT",
                     "start again with -init")
        again = self.start()
        self.assertNotEqual(again["nonce"], attempt["nonce"])
        self.assertNotEqual(again["otp"], attempt["otp"])
        self.assertEqual(self.gr("-cancel")[0], 0)


if __name__ == "__main__":
    unittest.main()
