/* A host program of libvae and libvae_mpi, run under mpirun by
   test_mpi.sh: it trains as a host would and checks what the ranks see.
   Usage: mpi_host MODE IMAGES_IDX OUT_PREFIX
     weights  3 epochs; each rank writes its weights to OUT_PREFIX.rankN
              and rank 0 prints the losses and the checksum
     sharded  the same with the optimizer's update sharded between the
              ranks (vae_mpi_shard_update)
     nan      rank 1 feeds a NaN at step 3: every rank must fail there
              with VAE_ERR_NOT_FINITE
     check    rank 1 feeds a wrong shape at step 3: it fails with
              VAE_ERR_SHAPE, the others with VAE_ERR_COMM
     stop     rank 1's progress callback stops after batch 2: every rank
              stops at the same position, and finishing the epoch gives
              the weights of an epoch never stopped
     die      rank 1 kills itself (SIGKILL) at batch 3: mpirun must end
              the job (the test bounds it with a timeout)
   Exits 0 when what it checks holds, 1 otherwise. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vae.h"
#include "vae_mpi.h"

enum { HIDDEN = 64, LATENT = 8, BATCH = 50 };

static int rank;

static int check(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "rank %d: FAILED: %s (%s)\n", rank, what, vae_last_error());
    return ok;
}

static vae_model *build(int64_t in, vae_likelihood likelihood)
{
    vae_graph *g = NULL;
    vae_model *m = NULL;
    int n = (int)in, x, mu, lv, h, z, logits, loss;
    if (vae_graph_create(&g, 42) || vae_graph_input(g, "x", 1, &n, &x) ||
        vae_layer_gaussian_mlp(g, x, HIDDEN, VAE_ACT_RELU, LATENT, 0, "q", &mu, &lv, &h) ||
        vae_op_sample_normal(g, mu, lv, &z) ||
        vae_layer_bernoulli_mlp(g, z, HIDDEN, VAE_ACT_RELU, n, "p", &logits) ||
        vae_elbo_build(g, x, mu, lv, z, logits, likelihood, VAE_OBJECTIVE_ELBO, 1.0f, &loss) ||
        vae_model_create(&m, g)) {
        fprintf(stderr, "rank %d: building: %s\n", rank, vae_last_error());
        exit(1);
    }
    return m;
}

static int stop_after_two(void *user, int batch, int batches, float loss)
{
    (void)user, (void)batches, (void)loss;
    return rank == 1 && batch == 2;
}

static int die_at_three(void *user, int batch, int batches, float loss)
{
    (void)user, (void)batches, (void)loss;
    if (rank == 1 && batch == 3)
        raise(SIGKILL);
    return 0;
}

static int write_weights(const vae_model *m, const char *prefix)
{
    int64_t n = vae_model_param_count(m);
    float *p = malloc((size_t)n * sizeof *p);
    char path[4096];
    FILE *f;
    int ok;
    snprintf(path, sizeof path, "%s.rank%d", prefix, rank);
    ok = p && vae_model_params_get(m, p, n) == VAE_OK && (f = fopen(path, "wb")) &&
         fwrite(p, sizeof *p, (size_t)n, f) == (size_t)n && fclose(f) == 0;
    free(p);
    return check(ok, "writing the weights");
}

static int train_weights(vae_model *m, vae_optimizer *opt, const vae_dataset *data,
                         const char *prefix, vae_mpi *mpi)
{
    double obj, nelbo, seconds;
    int64_t calls, bytes;
    for (int e = 1; e <= 3; e++) {
        if (!check(vae_model_train_epoch(m, opt, data, BATCH, NULL, NULL, &obj, &nelbo) == VAE_OK,
                   "training"))
            return 0;
        if (rank == 0)
            printf("epoch %d train_nelbo %.9g\n", e, nelbo);
    }
    vae_mpi_stats(mpi, &seconds, &calls, &bytes);
    if (rank == 0)
        printf("checksum %016llx, %lld collective calls, %.1f MB, %.3f s in them\n",
               (unsigned long long)vae_model_checksum(m), (long long)calls, bytes / 1e6, seconds);
    return write_weights(m, prefix);
}

/* Step 3 of a train_step loop goes wrong on rank 1 only. */
static int bad_step(vae_model *m, vae_optimizer *opt, const vae_dataset *data, int nan)
{
    int64_t in = vae_dataset_row_size(data), dims[2] = {BATCH, in}, wrong[2] = {BATCH, in - 1};
    vae_tensor *x = NULL, *bad = NULL;
    vae_status s = VAE_OK, want_here = nan ? VAE_ERR_NOT_FINITE
                                           : rank == 1 ? VAE_ERR_SHAPE : VAE_ERR_COMM;
    int step;
    vae_tensor_create(&x, 2, dims);
    vae_tensor_create(&bad, 2, nan ? dims : wrong);
    for (step = 1; step <= 5 && s == VAE_OK; step++) {
        const vae_tensor *feed = x;
        vae_dataset_get(data, (step - 1) * BATCH, x);
        if (step == 3 && rank == 1) {
            if (nan) {
                vae_dataset_get(data, (step - 1) * BATCH, bad);
                /* in rank 1's share of the batch: its last rows */
                vae_tensor_data(bad)[(BATCH - 1) * in + 7] = 0.0f / 0.0f;
            }
            feed = bad;
        }
        s = vae_model_train_step(m, opt, feed, NULL, NULL);
    }
    printf("rank %d: stopped at step %d: %s: %s\n", rank, step - 1, vae_strerror(s),
           vae_last_error());
    vae_tensor_free(x);
    vae_tensor_free(bad);
    return check(step - 1 == 3 && s == want_here, "the failure on rank 1 at step 3");
}

static int stop_and_finish(vae_model *m, vae_optimizer *opt, const vae_dataset *data)
{
    vae_model *whole = build(vae_dataset_row_size(data), VAE_LIKELIHOOD_BERNOULLI);
    vae_optimizer *whole_opt = NULL;
    vae_status s = vae_model_train_epoch(m, opt, data, BATCH, stop_after_two, NULL, NULL, NULL);
    int ok = check(s == VAE_ERR_STOPPED && vae_model_epoch_position(m) == 2,
                   "every rank stopped after batch 2");
    ok &= check(vae_model_train_epoch(m, opt, data, BATCH, NULL, NULL, NULL, NULL) == VAE_OK,
                "finishing the epoch");
    /* the same epoch in one go, on the same ranks */
    vae_model_set_comm(whole, vae_model_comm(m));
    vae_optimizer_create(&whole_opt, whole, VAE_OPTIMIZER_ADAM);
    ok &= check(vae_model_train_epoch(whole, whole_opt, data, BATCH, NULL, NULL, NULL, NULL) ==
                    VAE_OK, "the epoch in one go");
    ok &= check(vae_model_checksum(whole) == vae_model_checksum(m),
                "stopped and finished = never stopped");
    if (rank == 0)
        printf("stop: position 2 on every rank; finished %016llx, in one go %016llx\n",
               (unsigned long long)vae_model_checksum(m),
               (unsigned long long)vae_model_checksum(whole));
    vae_optimizer_free(whole_opt);
    vae_model_free(whole);
    return ok;
}

int main(int argc, char **argv)
{
    vae_dataset *data = NULL;
    vae_model *m;
    vae_optimizer *opt = NULL;
    vae_mpi *mpi = NULL;
    const char *mode;
    int ok;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc != 4) {
        fprintf(stderr, "usage: mpi_host weights|sharded|nan|check|stop|die IMAGES_IDX "
                "OUT_PREFIX\n");
        MPI_Finalize();
        return 2;
    }
    mode = argv[1];
    if (vae_mpi_create(&mpi, MPI_COMM_WORLD) != VAE_OK ||
        vae_dataset_load_idx(&data, argv[2], NULL) != VAE_OK) {
        fprintf(stderr, "rank %d: %s %s\n", rank, vae_mpi_last_error(), vae_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    m = build(vae_dataset_row_size(data),
              strcmp(mode, "nan") ? VAE_LIKELIHOOD_BERNOULLI : VAE_LIKELIHOOD_GAUSSIAN_UNIT_LINEAR);
    vae_model_set_max_batch(m, BATCH);
    vae_model_set_threads(m, 1);
    if (!strcmp(mode, "sharded"))
        vae_mpi_shard_update(mpi);
    vae_model_set_comm(m, vae_mpi_comm(mpi));
    vae_optimizer_create(&opt, m, VAE_OPTIMIZER_ADAM);
    if (!strcmp(mode, "weights") || !strcmp(mode, "sharded"))
        ok = train_weights(m, opt, data, argv[3], mpi);
    else if (!strcmp(mode, "nan") || !strcmp(mode, "check"))
        ok = bad_step(m, opt, data, !strcmp(mode, "nan"));
    else if (!strcmp(mode, "stop"))
        ok = stop_and_finish(m, opt, data);
    else if (!strcmp(mode, "die"))
        ok = vae_model_train_epoch(m, opt, data, BATCH, die_at_three, NULL, NULL, NULL) == VAE_OK;
    else
        ok = check(0, "unknown mode");
    vae_optimizer_free(opt);
    vae_model_free(m);
    vae_dataset_free(data);
    vae_mpi_free(mpi);
    MPI_Finalize();
    return ok ? 0 : 1;
}
