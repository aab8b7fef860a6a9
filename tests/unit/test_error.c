/* Error codes: values, names and messages (error.h, docs/semantics.md). */
#include "test_util.h"

#include <limits.h>

#include <criterion/criterion.h>

struct code_row {
    int code;
    int value;
    const char *name;
};

static const struct code_row rows[] = {
    { WORKER_OK, 0, "WORKER_OK" },
    { WORKER_EXIT, -1, "WORKER_EXIT" },
    { WORKER_ETIMEDOUT, -2, "WORKER_ETIMEDOUT" },
    { WORKER_EINVAL, -3, "WORKER_EINVAL" },
    { WORKER_ENOMEM, -4, "WORKER_ENOMEM" },
    { WORKER_ESTATE, -5, "WORKER_ESTATE" },
    { WORKER_EREJECTED, -6, "WORKER_EREJECTED" },
    { WORKER_EFULL, -7, "WORKER_EFULL" },
    { WORKER_EDEADLK, -8, "WORKER_EDEADLK" },
    { WORKER_EAGAIN, -9, "WORKER_EAGAIN" },
    { WORKER_ENOREPLY, -10, "WORKER_ENOREPLY" },
    { WORKER_EWOULDBLOCK, -11, "WORKER_EWOULDBLOCK" },
    { WORKER_EEXPIRED, -12, "WORKER_EEXPIRED" },
    { WORKER_EINTENSITY, -13, "WORKER_EINTENSITY" },
};
#define NROWS (sizeof rows / sizeof rows[0])

Test(errors, values_are_the_documented_ones)
{
    for (size_t i = 0; i < NROWS; i++)
        cr_assert_eq(rows[i].code, rows[i].value, "%s is %d, expected %d", rows[i].name,
            rows[i].code, rows[i].value);
}

Test(errors, every_code_but_ok_is_negative)
{
    cr_assert_eq(WORKER_OK, 0);
    for (size_t i = 1; i < NROWS; i++)
        cr_assert_lt(rows[i].code, 0, "%s", rows[i].name);
}

Test(errors, err_name_names_every_code)
{
    for (size_t i = 0; i < NROWS; i++) {
        const char *n = worker_err_name(rows[i].code);
        cr_assert_not_null(n);
        cr_assert_str_eq(n, rows[i].name);
    }
}

Test(errors, strerror_describes_every_code)
{
    for (size_t i = 0; i < NROWS; i++) {
        const char *s = worker_strerror(rows[i].code);
        cr_assert_not_null(s, "strerror(%d) is NULL", rows[i].code);
        cr_assert_gt(strlen(s), 0, "strerror(%s) is empty", rows[i].name);
    }
}

Test(errors, strerror_messages_are_distinct)
{
    for (size_t i = 0; i < NROWS; i++)
        for (size_t j = i + 1; j < NROWS; j++)
            cr_assert_str_neq(worker_strerror(rows[i].code), worker_strerror(rows[j].code),
                "%s and %s share a message", rows[i].name, rows[j].name);
}

Test(errors, strerror_matches_the_table)
{
    /* The X-macro table in error.h is the single source of the messages. */
#define ROW_(name, value, message) cr_assert_str_eq(worker_strerror(value), message, #name);
    WORKER_ERROR_TABLE(ROW_)
#undef ROW_
}

Test(errors, unknown_codes_are_handled)
{
    const int unknown[] = { 1, 2, 42, -100, 12345, INT_MAX, INT_MIN };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = worker_strerror(unknown[i]);
        cr_assert_not_null(s, "strerror(%d) is NULL", unknown[i]);
        cr_assert_gt(strlen(s), 0, "strerror(%d) is empty", unknown[i]);
        for (size_t j = 0; j < NROWS; j++)
            cr_assert_str_neq(s, worker_strerror(rows[j].code), "unknown code %d described as %s",
                unknown[i], rows[j].name);
        const char *n = worker_err_name(unknown[i]);
        cr_assert_not_null(n);
        cr_assert_str_eq(n, "WORKER_E?", "err_name(%d) = %s", unknown[i], n);
    }
}

Test(errors, strings_are_static)
{
    /* The same pointer every time: static strings, nothing allocated. */
    cr_assert_eq(worker_strerror(WORKER_EINVAL), worker_strerror(WORKER_EINVAL));
    cr_assert_eq(worker_err_name(WORKER_EFULL), worker_err_name(WORKER_EFULL));
}
