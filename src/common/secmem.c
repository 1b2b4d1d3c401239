/* Memory for secrets (secmem.h). */
#include "common/secmem.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"

#define MOD "secmem"

int mf_secmem_init(size_t heap_bytes)
{
    if (CRYPTO_secure_malloc_initialized())
        return 0;
    int rc = CRYPTO_secure_malloc_init(heap_bytes, MF_SECMEM_MIN_BYTES);
    if (rc == 0)
        return MF_ECRYPTO;
    return rc == 1 ? 0 : 1;
}

static size_t page_round(size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096u;
    if (len == 0)
        len = 1;
    return (len + pg - 1) / pg * pg;
}

/* The fallback: whole pages of their own, locked and kept out of dumps. */
static void *map_alloc(size_t len)
{
    static atomic_bool warned;
    size_t size = page_round(len);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mlock(p, size) != 0 && !atomic_exchange(&warned, true))
        MF_WARN(MOD, "cannot lock key memory (mlock: %s); keys may be swapped out: "
                     "raise RLIMIT_MEMLOCK (ulimit -l)", strerror(errno));
#ifdef MADV_DONTDUMP
    (void)madvise(p, size, MADV_DONTDUMP); /* best effort: keep keys out of core dumps */
#endif
    return p; /* anonymous mappings are zero-filled */
}

void *mf_secmem_alloc(size_t len)
{
    if (CRYPTO_secure_malloc_initialized()) {
        void *p = OPENSSL_secure_zalloc(len ? len : 1);
        if (p)
            return p;
    }
    return map_alloc(len);
}

void mf_secmem_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    if (CRYPTO_secure_allocated(p)) {
        OPENSSL_secure_clear_free(p, len ? len : 1);
        return;
    }
    size_t size = page_round(len);
    OPENSSL_cleanse(p, size);
    (void)munlock(p, size);
    MF_ASSERT(munmap(p, size) == 0);
}

char *mf_secmem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = mf_secmem_alloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void mf_secmem_str_free(char *s)
{
    if (s)
        mf_secmem_free(s, strlen(s) + 1);
}

void mf_wipe_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

void *mf_wipe_pb_alloc(void *unused, size_t len)
{
    (void)unused;
    return malloc(len ? len : 1);
}

void mf_wipe_pb_free(void *unused, void *p)
{
    (void)unused;
    mf_wipe_free(p);
}

void mf_secmem_json_wipe(void)
{
    json_set_alloc_funcs(malloc, mf_wipe_free);
}
