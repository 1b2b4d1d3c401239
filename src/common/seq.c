/* SEQ as text (seq.h): Crockford base32, fixed width, so that lease ids and
 * engine object names print the same SEQ the same way and sort by it. */
#include "common/seq.h"

#include "common/err.h"

static const char alphabet[32] = "0123456789abcdefghjkmnpqrstvwxyz";

void mf_seq_format(uint64_t seq, char out[MF_SEQ_CHARS + 1])
{
    for (int i = MF_SEQ_CHARS - 1; i >= 0; i--) {
        out[i] = alphabet[seq & 31];
        seq >>= 5;
    }
    out[MF_SEQ_CHARS] = '\0';
}

/* The value of one digit, or -1. Explicit ranges, not a case bit trick:
 * "c | 0x20" would also turn control bytes into digits. */
static int digit_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
    for (int v = 0; v < 32; v++)
        if (alphabet[v] == c)
            return v;
    return -1;
}

int mf_seq_parse(const char *s, size_t len, uint64_t *seq)
{
    if (!s || len != MF_SEQ_CHARS)
        return MF_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < MF_SEQ_CHARS; i++) {
        int d = digit_value(s[i]);
        if (d < 0)
            return MF_EINVAL;
        if (i == 0 && d > 15)
            return MF_EINVAL; /* the value would need a 65th bit */
        v = (v << 5) | (uint64_t)d;
    }
    *seq = v;
    return 0;
}
