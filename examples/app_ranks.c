/* The ranks of a run started by mpirun: MPI is initialised only when the
   launcher's environment says the program is one of several ranks, so a
   program run on its own behaves and prints exactly as before.  Every
   rank trains; rank 0 alone prints and writes files. */
#define _GNU_SOURCE /* sched_getaffinity: the CPUs mpirun bound a rank to */
#include "app_run.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef VAE_EXAMPLES_MPI
#include <mpi.h>

#include "vae_mpi.h"
#endif

/* The job's size from the launcher (Open MPI, then the PMI ones); 0 when
   no launcher started the program. */
static int launched_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < COUNT(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

/* The CPUs this process may run on: fewer than the machine's when mpirun
   bound the rank to a core or a socket. */
static int affinity_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return CPU_COUNT(&set);
}

/* Threads per rank when --threads is not given: the cores shared by the
   ranks on this machine, never a thread per core per rank, and no more
   than the CPUs the rank is bound to.  More threads than those CPUs would
   take turns on them: said, not changed. */
void app_ranks_apply(app_run *r)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int bound = affinity_cpus();
    if (r->ranks == 1)
        return;
    if (!ex_flag_given(&r->opt, "threads") && cores >= 1) {
        long share = cores / r->local_ranks > 1 ? cores / r->local_ranks : 1;
        r->opt.threads = (int)(bound > 0 && bound < share ? bound : share);
    } else if (bound > 0 && r->opt.threads > bound) {
        app_note(r, "--threads %d, but mpirun bound each rank to %d CPU%s: its threads will "
                 "take turns (run mpirun with --bind-to none or --bind-to socket)",
                 r->opt.threads, bound, bound == 1 ? "" : "s");
    }
}

int app_ranks_start(app_run *r, int *argc, char ***argv)
{
    int size = launched_size();
    r->rank = 0;
    r->ranks = r->local_ranks = 1;
    if (size <= 1)
        return 0;
#ifndef VAE_EXAMPLES_MPI
    (void)argc;
    (void)argv;
    fprintf(stderr, "%s: started by an MPI launcher as one of %d ranks, but built without MPI: "
            "every rank would train alone.  Rebuild with libopenmpi-dev installed "
            "(-DVAE_WITH_MPI=ON), or run the program without mpirun.\n", r->app->name, size);
    return 2;
#else
    vae_mpi *mpi = NULL;
    vae_status s;
    MPI_Init(argc, argv);
    if ((s = vae_mpi_create(&mpi, MPI_COMM_WORLD)) != VAE_OK) {
        fprintf(stderr, "%s: MPI: %s (%s)\n", r->app->name, vae_mpi_last_error(), vae_strerror(s));
        MPI_Abort(MPI_COMM_WORLD, 1); /* the others would wait for this rank */
    }
    r->mpi = mpi;
    r->comm = vae_mpi_comm(mpi);
    r->rank = vae_comm_rank(r->comm);
    r->ranks = vae_comm_size(r->comm);
    r->local_ranks = vae_mpi_local_size(mpi);
    return 0;
#endif
}

void app_ranks_end(app_run *r)
{
#ifdef VAE_EXAMPLES_MPI
    if (r->mpi) {
        vae_mpi_free(r->mpi);
        r->mpi = NULL;
        r->comm = NULL;
        MPI_Finalize();
    }
#else
    (void)r;
#endif
}

int app_agree(const app_run *r, int rc)
{
    vae_status s;
    if (r->ranks == 1)
        return rc;
    s = vae_comm_agree(r->comm, rc ? VAE_ERR_STATE : VAE_OK);
    if (rc)
        return rc;
    if (s != VAE_OK && r->rank == 0)
        fprintf(stderr, "%s: %s\n", r->app->name, vae_last_error());
    return s != VAE_OK;
}

int app_agree_stop(const app_run *r, int stop)
{
    if (r->ranks == 1)
        return stop;
    return vae_comm_agree(r->comm, stop ? VAE_ERR_STOPPED : VAE_OK) != VAE_OK;
}

int app_share_best(app_run *r)
{
    double best[2] = {r->best_test, r->best_epoch};
    if (r->ranks == 1)
        return 0;
    CALL(r, "sharing the best epoch", vae_comm_broadcast(r->comm, best, sizeof best, 0));
    r->best_test = best[0];
    r->best_epoch = (int)best[1];
    return 0;
}

void app_describe_ranks(const app_run *r, char *buf, size_t size)
{
    if (r->ranks == 1)
        snprintf(buf, size, "%d threads", r->opt.threads);
    else
        snprintf(buf, size, "%d ranks x %d thread%s", r->ranks, r->opt.threads,
                 r->opt.threads == 1 ? "" : "s");
}
