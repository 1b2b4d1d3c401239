/* Memory for secrets: a locked heap kept out of core dumps, and frees that
 * wipe.
 *
 * Keys (the barrier's root key and keyring, unseal shares in flight) and
 * long-lived tokens (the dev root token) live in OpenSSL's secure heap once
 * mf_secmem_init() has run: one mapping, locked with mlock2(MLOCK_ONFAULT)
 * and marked MADV_DONTDUMP, whose blocks are wiped when freed. OpenSSL puts
 * its own private-key numbers there too. When the heap is not set up (unit
 * tests, tools) or full, an allocation falls back to a page-rounded anonymous
 * mapping that is locked and excluded from dumps the same way, so a secret
 * never lands in the ordinary heap either way.
 *
 * Not mlockall: each node maps two 8 GiB LMDB environments, and locking every
 * page would fail or starve the machine (README, "Secure defaults").
 *
 * Everything else that passes a secret through the ordinary heap (request
 * frames, unpacked requests, answers, KV values parsed by jansson) is wiped
 * when freed with mf_wipe_free(), which cleanses the block's whole usable size
 * (malloc_usable_size) so callers need not carry lengths around. */
#ifndef MF_COMMON_SECMEM_H
#define MF_COMMON_SECMEM_H

#include <stddef.h>

#define MF_SECMEM_HEAP_BYTES (1u << 20) /* keys, shares, tokens, OpenSSL's own */
#define MF_SECMEM_MIN_BYTES 16u         /* the heap's smallest block */

/* Set up the secure heap (once, before any secret is loaded). Returns 0 when
 * locked and excluded from dumps, 1 when set up but mlock or madvise failed
 * (RLIMIT_MEMLOCK too small: the caller warns), MF_ECRYPTO when it could not
 * be set up (allocations then use the locked-mapping fallback). */
int mf_secmem_init(size_t heap_bytes);

/* len zeroed bytes of locked, undumpable memory, or NULL (out of memory).
 * Release with mf_secmem_free(p, len) and the same len. */
void *mf_secmem_alloc(size_t len);

/* Wipe len bytes at p and release them. NULL is a no-op. */
void mf_secmem_free(void *p, size_t len);

/* A copy of the string s in secure memory, or NULL. Release with
 * mf_secmem_str_free(). */
char *mf_secmem_strdup(const char *s);
void mf_secmem_str_free(char *s);

/* free(p) after wiping the whole malloc'd block. For malloc'd memory only;
 * NULL is a no-op. */
void mf_wipe_free(void *p);

/* The same pair shaped as protobuf-c's ProtobufCAllocator (alloc, free,
 * allocator_data) and as jansson's json_set_alloc_funcs. */
void *mf_wipe_pb_alloc(void *unused, size_t len);
void mf_wipe_pb_free(void *unused, void *p);

/* Make jansson wipe every block it frees (strings parsed from a KV value
 * included). Call once at start, before jansson allocates anything. */
void mf_secmem_json_wipe(void);

#endif
