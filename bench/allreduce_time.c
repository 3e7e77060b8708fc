/* The time of the gradient sum of distributed training: the call
   libvae_mpi makes, MPI_Allreduce(MPI_IN_PLACE, ..., MPI_FLOAT, MPI_SUM)
   in pieces of at most 8 MiB (CHUNK_BYTES of mpi/vae_mpi.c), on float
   arrays of the reference runs' gradient sizes and of round sizes around
   them; and, for comparison, the same sum as one call, and as the pair
   libvae_mpi makes when libvae sums by halves (vae_comm_set_reduce_scatter
   and vae_comm_set_allgather): MPI_Reduce_scatter(MPI_IN_PLACE, ...,
   MPI_SUM), the move of this rank's part from the start of the buffer to
   its place, and MPI_Allgatherv(MPI_IN_PLACE, ...), each one call over the
   whole array with rank r's part [n r / size, n (r + 1) / size) -- the
   same bytes as one all-reduce.

       mpirun -np N bench_allreduce_time [R2_FLOATS [R3_FLOATS [REPS]]]

   R2_FLOATS and R3_FLOATS are the parameter counts of R2 and R3 (the
   examples print them: 550629 and 7082072 in 0.4); REPS repetitions (50)
   follow 5 warm-up calls.  Each repetition starts after a barrier and
   counts the slowest rank's time.  Rank 0 prints, per size, the median and
   the minimum, and the bus bandwidth 2 (n - 1) / n * bytes / median of a
   ring all-reduce over n ranks (the bytes each rank sends and receives);
   then the median of the one call, and the median and minimum of the
   reduce-scatter + all-gather pair. */
#include <mpi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WARMUP 5
#define PIECE_FLOATS ((8 << 20) / (int)sizeof(float)) /* the adapter's pieces */

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long long arg_count(const char *s, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 1 || v > (long long)1 << 30) {
        fprintf(stderr, "bench_allreduce_time: %s must be 1 .. 2^30, not '%s'\n", what, s);
        return -1;
    }
    return v;
}

/* The parts of the adapter's reduce-scatter and all-gather, for parts_of
   floats (0: none yet), as mpi/vae_mpi.c computes and keeps them. */
static int *counts, *displs, parts_of;

static void set_parts(int n)
{
    int rank, size, r;
    if (n == parts_of)
        return;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (r = 0; r < size; r++) {
        int64_t lo = (int64_t)n * r / size, hi = (int64_t)n * (r + 1) / size;
        displs[r] = (int)lo;
        counts[r] = (int)(hi - lo);
    }
    parts_of = n;
}

/* The sum as libvae_mpi's reduce_scatter and allgather callbacks make it
   (piece is not used: the parts are those of the whole array). */
static void halves(float *buf, int n, int piece)
{
    int rank;
    (void)piece;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    set_parts(n);
    MPI_Reduce_scatter(MPI_IN_PLACE, buf, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (displs[rank] > 0)
        memmove(buf + displs[rank], buf, (size_t)counts[rank] * sizeof *buf);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
}

static void sum(float *buf, int n, int piece)
{
    for (int done = 0; done < n; done += piece)
        MPI_Allreduce(MPI_IN_PLACE, buf + done, n - done < piece ? n - done : piece, MPI_FLOAT,
                      MPI_SUM, MPI_COMM_WORLD);
}

/* The median and minimum over reps of the slowest rank's time of op (sum
   or halves) in pieces of `piece` floats; on rank 0 only.  times and
   slowest hold reps. */
static void time_sum(void (*op)(float *, int, int), float *buf, int n, int piece, int reps,
                     double *times, double *slowest, double *median, double *best)
{
    int r;
    *median = *best = 0.0;
    for (r = 0; r < WARMUP; r++)
        op(buf, n, piece);
    for (r = 0; r < reps; r++) {
        double start;
        MPI_Barrier(MPI_COMM_WORLD);
        start = MPI_Wtime();
        op(buf, n, piece);
        times[r] = MPI_Wtime() - start;
    }
    MPI_Reduce(times, slowest, reps, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    if (r != 0)
        return;
    qsort(slowest, (size_t)reps, sizeof *slowest, by_value);
    *median = reps % 2 ? slowest[reps / 2] : 0.5 * (slowest[reps / 2 - 1] + slowest[reps / 2]);
    *best = slowest[0];
}

static const char *name_at(const char *names, int i)
{
    return names + (size_t)i * MPI_MAX_PROCESSOR_NAME;
}

/* The first rank whose name is rank i's. */
static int first_with_name(const char *names, int i)
{
    int j = 0;
    while (strcmp(name_at(names, j), name_at(names, i)) != 0)
        j++;
    return j;
}

/* "# 2 ranks on 1 host: vm (2)": the processor names of all ranks, on rank 0. */
static void print_hosts(int rank, int size)
{
    char name[MPI_MAX_PROCESSOR_NAME] = {0}, *names = NULL;
    int len, i, j, hosts = 0;
    MPI_Get_processor_name(name, &len);
    if (rank == 0 && !(names = calloc((size_t)size, MPI_MAX_PROCESSOR_NAME)))
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
               MPI_COMM_WORLD);
    if (rank != 0)
        return;
    for (i = 0; i < size; i++)
        hosts += first_with_name(names, i) == i;
    printf("# %d ranks on %d host%s:", size, hosts, hosts == 1 ? "" : "s");
    for (i = 0; i < size; i++) {
        int count = 0;
        if (first_with_name(names, i) != i)
            continue;
        for (j = i; j < size; j++)
            count += first_with_name(names, j) == i;
        printf(" %s (%d)", name_at(names, i), count);
    }
    printf("\n");
    free(names);
}

int main(int argc, char **argv)
{
    struct { const char *what; long long n; } sizes[] = {
        {"1e3", 1000}, {"1e4", 10000}, {"1e5", 100000},
        {"P1 784-400-20", 652824}, {"R2", 550629}, {"R3", 7082072}, {"1e7", 10000000},
    };
    int nsizes = (int)(sizeof sizes / sizeof *sizes), reps = 50, rank, size, s, r, bad = 0;
    long long max_n = 0;
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    double *times, *slowest;
    float *buf;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc > 4 || (argc > 1 && (sizes[4].n = arg_count(argv[1], "R2_FLOATS")) < 0) ||
        (argc > 2 && (sizes[5].n = arg_count(argv[2], "R3_FLOATS")) < 0) ||
        (argc > 3 && (reps = (int)arg_count(argv[3], "REPS")) < 0)) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_allreduce_time [R2_FLOATS [R3_FLOATS [REPS]]]\n");
        MPI_Finalize();
        return 2;
    }
    for (s = 0; s < nsizes; s++)
        max_n = sizes[s].n > max_n ? sizes[s].n : max_n;
    buf = malloc((size_t)max_n * sizeof *buf);
    times = malloc((size_t)reps * sizeof *times);
    slowest = malloc((size_t)reps * sizeof *slowest);
    counts = malloc((size_t)size * sizeof *counts);
    displs = malloc((size_t)size * sizeof *displs);
    if (!buf || !times || !slowest || !counts || !displs)
        MPI_Abort(MPI_COMM_WORLD, 1);

    if (rank == 0) {
        int len;
        MPI_Get_library_version(version, &len);
        version[strcspn(version, "\n,")] = '\0';
        printf("# MPI_Allreduce in place, float sum, beside Reduce_scatter + Allgatherv; %s; %d repetitions after %d warm-up\n",
               version, reps, WARMUP);
    }
    print_hosts(rank, size);
    if (rank == 0)
        printf("%-14s %10s %11s %11s %11s %9s %11s %11s %11s\n", "size", "floats", "bytes",
               "median us", "min us", "bus GB/s", "1 call us", "rs+ag us", "rs+ag min");

    for (s = 0; s < nsizes; s++) {
        int n = (int)sizes[s].n;
        double bytes = (double)n * sizeof(float), median, best, whole, whole_best, pair, pair_best;
        /* First check the sum: every rank's ones become size on every rank. */
        for (r = 0; r < n; r++)
            buf[r] = 1.0f;
        sum(buf, n, PIECE_FLOATS);
        bad += buf[0] != (float)size || buf[n / 2] != (float)size || buf[n - 1] != (float)size;
        for (r = 0; r < n; r++) /* and the pair, at every float */
            buf[r] = 1.0f;
        halves(buf, n, n);
        for (r = 0; r < n && buf[r] == (float)size; r++)
            ;
        bad += r < n;
        memset(buf, 0, (size_t)n * sizeof *buf); /* zeros: no overflow over the repetitions */
        time_sum(sum, buf, n, PIECE_FLOATS, reps, times, slowest, &median, &best);
        time_sum(sum, buf, n, n, reps, times, slowest, &whole, &whole_best);
        time_sum(halves, buf, n, n, reps, times, slowest, &pair, &pair_best);
        if (rank == 0)
            printf("%-14s %10d %11.0f %11.1f %11.1f %9.2f %11.1f %11.1f %11.1f\n", sizes[s].what,
                   n, bytes, median * 1e6, best * 1e6,
                   2.0 * (size - 1) / size * bytes / median / 1e9, whole * 1e6, pair * 1e6,
                   pair_best * 1e6);
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0 && bad)
        printf("# WRONG SUMS on %d rank-size pairs\n", bad);
    free(buf);
    free(times);
    free(slowest);
    free(counts);
    free(displs);
    MPI_Finalize();
    return bad ? 1 : 0;
}
