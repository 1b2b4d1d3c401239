/* SEQ as text: the one format shared by lease ids ("MOUNT/NAME/SEQ", store)
 * and engine object names ("mf_SEQ", engines).
 *
 * A SEQ is printed as exactly MF_SEQ_CHARS digits of Crockford's base32
 * ("0123456789abcdefghjkmnpqrstvwxyz": no i, l, o, u), lower case, most
 * significant digit first and zero-padded, so byte order of the text is the
 * numeric order of the SEQs and the text is safe in a PostgreSQL identifier.
 * 13 digits of 5 bits hold 65 bits, so the first digit is at most 'f' (15).
 *
 * Pure: no allocation, no I/O.
 */
#ifndef MF_COMMON_SEQ_H
#define MF_COMMON_SEQ_H

#include <stddef.h>
#include <stdint.h>

#define MF_SEQ_CHARS 13 /* characters of one printed SEQ (64 bits / 5 bits, rounded up) */

/* Print seq into out: MF_SEQ_CHARS characters and a NUL. Never fails. */
void mf_seq_format(uint64_t seq, char out[MF_SEQ_CHARS + 1]);

/* Parse the len bytes at s (no NUL needed) as a printed SEQ into *seq.
 * Upper case letters are accepted, as Crockford's decoding allows; the
 * aliases i/l for 1 and o for 0 are not (a SEQ is copied, not typed).
 * Returns 0, or MF_EINVAL (and *seq untouched) when len is not
 * MF_SEQ_CHARS, a byte is not a digit of the alphabet, or the value needs
 * more than 64 bits. */
int mf_seq_parse(const char *s, size_t len, uint64_t *seq);

#endif
