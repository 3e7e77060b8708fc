/* The library-wide calls: versions, status messages, the last error, the
   log callback, BLAS information, and tensors. */
#include "testutil.h"

#include <string.h>

START_TEST(test_version)
{
    ck_assert_str_eq(vae_version_string(), VAE_VERSION_STRING);
    ck_assert_int_eq(vae_version_number(), VAE_VERSION_NUMBER);
    ck_assert_int_eq(VAE_VERSION_NUMBER,
                     VAE_VERSION_MAJOR * 10000 + VAE_VERSION_MINOR * 100 + VAE_VERSION_PATCH);
}
END_TEST

/* Every status has its own message; unknown values do not crash. */
START_TEST(test_strerror)
{
    for (int s = VAE_OK; s <= VAE_ERR_THREAD; s++) {
        ck_assert_ptr_nonnull(vae_strerror((vae_status)s));
        ck_assert_str_ne(vae_strerror((vae_status)s), "unknown status");
        for (int t = 0; t < s; t++)
            ck_assert_str_ne(vae_strerror((vae_status)s), vae_strerror((vae_status)t));
    }
    ck_assert_str_eq(vae_strerror((vae_status)999), "unknown status");
    ck_assert_str_eq(vae_strerror((vae_status)-1), "unknown status");
}
END_TEST

START_TEST(test_last_error_names_the_problem)
{
    vae_tensor *t = NULL;
    int64_t dims[2] = {3, -4};
    ck_assert_int_eq(vae_tensor_create(&t, 2, dims), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "dimension 1"));
    ck_assert_int_eq(vae_tensor_create(&t, 5, dims), VAE_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(vae_last_error(), "ndim"));
}
END_TEST

typedef struct log_record {
    int count;
    vae_log_level level;
    char last[256];
} log_record;

static void record_log(void *user, vae_log_level level, const char *message)
{
    log_record *r = user;
    r->count++;
    r->level = level;
    snprintf(r->last, sizeof r->last, "%s", message);
}

/* Messages reach the callback at or below the level set, and only then. */
START_TEST(test_log_callback)
{
    log_record rec = {0};
    int x, y, per_row;
    vae_graph *g = tu_graph(3, &x);
    vae_model *m;
    y = tu_variable(g, x, 2, "v");
    per_row = tu_weighted_sum(g, y);
    vae_set_log_callback(record_log, &rec);
    vae_set_log_level(VAE_LOG_WARNING);
    m = tu_model(g, x, per_row); /* plans memory: an info message */
    ck_assert_int_eq(rec.count, 0);
    vae_model_free(m);
    vae_set_log_level(VAE_LOG_INFO);
    g = tu_graph(3, &x);
    y = tu_variable(g, x, 2, "v");
    m = tu_model(g, x, tu_weighted_sum(g, y));
    ck_assert_int_ge(rec.count, 1);
    ck_assert_int_eq(rec.level, VAE_LOG_INFO);
    ck_assert_ptr_nonnull(strstr(rec.last, "planned"));
    vae_set_log_callback(NULL, NULL);
    vae_set_log_level(VAE_LOG_WARNING);
    vae_model_free(m);
}
END_TEST

START_TEST(test_blas_info)
{
    const char *info = vae_blas_info();
    ck_assert_ptr_nonnull(info);
    ck_assert(strstr(info, "OpenBLAS") || strstr(info, "BLIS"));
    if (vae_blas_env_hint())
        ck_assert_ptr_nonnull(strchr(vae_blas_env_hint(), '='));
}
END_TEST

START_TEST(test_tensor_round_trip)
{
    int64_t dims[3] = {2, 3, 4};
    float in[24], out[24];
    vae_tensor *t;
    for (int i = 0; i < 24; i++)
        in[i] = (float)i * 0.5f - 3.0f;
    ck_assert_int_eq(vae_tensor_from_host(&t, 3, dims, in), VAE_OK);
    ck_assert_int_eq(vae_tensor_ndim(t), 3);
    ck_assert_int_eq(vae_tensor_dim(t, 0), 2);
    ck_assert_int_eq(vae_tensor_dim(t, 2), 4);
    ck_assert_int_eq(vae_tensor_dim(t, 3), -1);
    ck_assert_int_eq(vae_tensor_dim(NULL, 0), -1);
    ck_assert_int_eq(vae_tensor_count(t), 24);
    ck_assert_int_eq(vae_tensor_copy_to_host(t, out, 24), VAE_OK);
    ck_assert_mem_eq(in, out, sizeof in);
    ck_assert_int_eq(vae_tensor_copy_to_host(t, out, 23), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_tensor_copy_from_host(t, in, 25), VAE_ERR_SHAPE);
    ck_assert_int_eq(vae_tensor_copy_from_host(t, NULL, 24), VAE_ERR_ARGUMENT);
    in[5] = 42.0f;
    ck_assert_float_eq(vae_tensor_data(t)[5], 2.5f - 3.0f + 0.0f); /* a copy, not a view */
    ck_assert_int_eq(vae_tensor_copy_from_host(t, in, 24), VAE_OK);
    ck_assert_float_eq(vae_tensor_data(t)[5], 42.0f);
    vae_tensor_free(t);
    vae_tensor_free(NULL);
}
END_TEST

START_TEST(test_tensor_limits)
{
    int64_t four[4] = {1, 2, 3, 4}, huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    vae_tensor *t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 4, four), VAE_OK);
    ck_assert_int_eq(vae_tensor_count(t), 24);
    vae_tensor_free(t);
    t = NULL;
    ck_assert_int_eq(vae_tensor_create(&t, 2, huge), VAE_ERR_ARGUMENT);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(vae_tensor_create(NULL, 1, four), VAE_ERR_ARGUMENT);
    ck_assert_int_eq(vae_tensor_from_host(&t, 1, four, NULL), VAE_ERR_ARGUMENT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("library");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_last_error_names_the_problem);
    tcase_add_test(tc, test_log_callback);
    tcase_add_test(tc, test_blas_info);
    tcase_add_test(tc, test_tensor_round_trip);
    tcase_add_test(tc, test_tensor_limits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
