/* Version: the library's runtime version agrees with the macros of
 * <worker/version.h> it was built with (version.h, docs/versioning.md). */
#include "test_util.h"

#include <criterion/criterion.h>

Test(version, string_is_the_macro_string)
{
    const char *v = worker_version();
    cr_assert_not_null(v);
    cr_assert_str_eq(v, WORKER_VERSION_STRING);
}

Test(version, string_is_major_minor_patch)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", WORKER_VERSION_MAJOR, WORKER_VERSION_MINOR,
        WORKER_VERSION_PATCH);
    cr_assert_str_eq(WORKER_VERSION_STRING, expected);
    cr_assert_str_eq(worker_version(), expected);
}

Test(version, number_is_the_macro_number)
{
    cr_assert_eq(worker_version_number(), WORKER_VERSION_NUMBER);
    cr_assert_eq(WORKER_VERSION_NUMBER,
        WORKER_VERSION_MAJOR * 10000 + WORKER_VERSION_MINOR * 100 + WORKER_VERSION_PATCH);
}

Test(version, parts_are_in_range)
{
    cr_assert_geq(WORKER_VERSION_MAJOR, 0);
    cr_assert(WORKER_VERSION_MINOR >= 0 && WORKER_VERSION_MINOR < 100);
    cr_assert(WORKER_VERSION_PATCH >= 0 && WORKER_VERSION_PATCH < 100);
}

Test(version, string_is_static)
{
    cr_assert_eq(worker_version(), worker_version());
}
