/* The true cause of a failed storage write (common/fsstat.h): a full LMDB
 * map, a full filesystem (including LMDB's EIO for a short write on one),
 * or a failing disk, told apart with the statvfs answer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsstat.h"

#define MIB (1024ULL * 1024)

/* MDB_MAP_FULL names the map size and the directory, whatever the disk says. */
static void test_common_fsstat_map_full(void **state)
{
    (void)state;
    struct mf_fsstat fs = {.avail_bytes = 10 * MIB * 1024, .total_bytes = 100 * MIB * 1024};
    char cause[160];
    assert_int_equal(mf_fsstat_classify(MF_EMAPFULL, &fs, "/d/log", 16 * MIB, cause,
                                        sizeof(cause)),
                     MF_EMAPFULL);
    assert_string_equal(cause, "LMDB map full: map_size 16 MiB (/d/log)");
    assert_true(mf_fsstat_is_space(MF_EMAPFULL));
}

/* ENOSPC, however it is reported, is a full filesystem with its free space. */
static void test_common_fsstat_enospc(void **state)
{
    (void)state;
    struct mf_fsstat fs = {.avail_bytes = 8 * 1024, .total_bytes = 40 * MIB};
    char cause[160];
    assert_int_equal(mf_fsstat_classify(-ENOSPC, &fs, "/d/state", 0, cause, sizeof(cause)),
                     MF_ENOSPACE);
    assert_string_equal(cause, "no space left on device: /d/state (8 KiB free)");
    assert_int_equal(mf_fsstat_classify(MF_ENOSPACE, NULL, "/d/log", 0, cause, sizeof(cause)),
                     MF_ENOSPACE);
    assert_string_equal(cause, "no space left on device: /d/log");
    assert_true(mf_fsstat_is_space(MF_ENOSPACE));
}

/* EIO on a nearly full filesystem is LMDB's short write: space, not a bad disk. */
static void test_common_fsstat_eio_on_full_fs_is_space(void **state)
{
    (void)state;
    struct mf_fsstat fs = {.avail_bytes = 200 * 1024, .total_bytes = 40 * MIB};
    char cause[160];
    assert_int_equal(mf_fsstat_classify(-EIO, &fs, "/d/log", 0, cause, sizeof(cause)),
                     MF_ENOSPACE);
    assert_string_equal(cause, "no space left on device: /d/log (200 KiB free)");
    /* The state's untranslated commit failure counts the same way. */
    assert_int_equal(mf_fsstat_classify(MF_ESTORAGE, &fs, "/d/state", 0, cause, sizeof(cause)),
                     MF_ENOSPACE);
}

/* EIO with room to spare is a failing disk: MF_ESTORAGE, and the node stops. */
static void test_common_fsstat_eio_with_space_is_disk(void **state)
{
    (void)state;
    struct mf_fsstat fs = {.avail_bytes = MF_FSSTAT_NEARLY_FULL_BYTES,
                           .total_bytes = 40 * MIB};
    char cause[160];
    assert_int_equal(mf_fsstat_classify(-EIO, &fs, "/d/log", 0, cause, sizeof(cause)),
                     MF_ESTORAGE);
    assert_non_null(strstr(cause, "storage error: /d/log: "));
    assert_non_null(strstr(cause, strerror(EIO)));
    /* Unknown free space: never guessed to be "full". */
    assert_int_equal(mf_fsstat_classify(-EIO, NULL, "/d/log", 0, cause, sizeof(cause)),
                     MF_ESTORAGE);
    assert_false(mf_fsstat_is_space(MF_ESTORAGE));
    assert_int_equal(mf_fsstat_classify(0, &fs, "/d", 0, cause, sizeof(cause)), 0);
    assert_string_equal(cause, "");
}

/* Both space codes are UNAVAILABLE on the wire: the client tries another node. */
static void test_common_fsstat_wire_names(void **state)
{
    (void)state;
    assert_string_equal(mf_err_name(MF_ENOSPACE), "UNAVAILABLE");
    assert_string_equal(mf_err_name(MF_EMAPFULL), "UNAVAILABLE");
    assert_string_equal(mf_strerror(MF_ENOSPACE), "no space left on device");
}

/* The floor and the reserve follow config.h's rules, capped by the volume. */
static void test_common_fsstat_floor_and_reserve(void **state)
{
    (void)state;
    assert_int_equal(mf_fsstat_floor_bytes(7, 1000 * MIB), 7 * MIB);
    assert_int_equal(mf_fsstat_floor_bytes(0, 40 * MIB), 4 * MIB);          /* min */
    assert_int_equal(mf_fsstat_floor_bytes(0, 1000 * MIB), 50 * MIB);       /* 1/20 */
    assert_int_equal(mf_fsstat_floor_bytes(0, 100000 * MIB), 2048 * MIB);   /* max */
    assert_int_equal(mf_fsstat_reserve_bytes(8, 0, 4 * MIB, 2048, 1000 * MIB), 8 * MIB);
    assert_int_equal(mf_fsstat_reserve_bytes(0, 10, 4 * MIB, 2048, 1000 * MIB), 4 * MIB);
    assert_int_equal(mf_fsstat_reserve_bytes(0, 10000, 4 * MIB, 2048, 1000 * MIB),
                     10000 * 2048);
    /* A tenth of a small volume at most. */
    assert_int_equal(mf_fsstat_reserve_bytes(0, 10, 4 * MIB, 2048, 20 * MIB), 2 * MIB);
    assert_int_equal(mf_fsstat_reserve_bytes(64, 0, 4 * MIB, 2048, 40 * MIB), 4 * MIB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_fsstat_map_full),
        cmocka_unit_test(test_common_fsstat_enospc),
        cmocka_unit_test(test_common_fsstat_eio_on_full_fs_is_space),
        cmocka_unit_test(test_common_fsstat_eio_with_space_is_disk),
        cmocka_unit_test(test_common_fsstat_wire_names),
        cmocka_unit_test(test_common_fsstat_floor_and_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
