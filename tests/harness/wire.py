"""The protobuf wire format by hand, so tests can send bytes a real client
would never encode (bad UTF-8, NULs, oversized or malformed fields)."""


def varint(n):
    """n as a base-128 varint."""
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, payload):
    """A length-delimited field (string, bytes, message)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload
