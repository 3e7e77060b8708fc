/*
 * libvae_mpi - an MPI adapter for libvae's communicators (since 0.4).
 *
 * libvae itself does not link MPI: a vae_comm calls the host's collective
 * operations through callbacks (include/vae.h, "Training across
 * processes").  This small library supplies those callbacks for an MPI
 * communicator, so a host only writes
 *
 *     int launched = vae_mpi_launched_size() > 0;   // started by mpirun?
 *     if (launched) MPI_Init(&argc, &argv);
 *     vae_mpi *mpi = NULL;
 *     if (launched && vae_mpi_create(&mpi, MPI_COMM_WORLD) != VAE_OK) {
 *         fprintf(stderr, "%s\n", vae_mpi_last_error()); ...
 *     }
 *     if (mpi) vae_model_set_comm(model, vae_mpi_comm(mpi));
 *     ... train ...
 *     vae_model_set_comm(model, NULL);   // or vae_model_free(model)
 *     vae_mpi_free(mpi);
 *     if (launched) MPI_Finalize();
 *
 * Build with `pkg-config --cflags --libs vae-mpi` or CMake's
 * find_package(vae) and the target vae::vae_mpi.
 *
 * Errors: calls that fail return a vae_status (values of include/vae.h)
 * and leave a message for vae_mpi_last_error(), kept per thread; the
 * adapter cannot write libvae's vae_last_error().  A collective that fails
 * inside training reaches the host as VAE_ERR_COMM from the libvae call,
 * whose message gives the MPI error code the callback returned;
 * vae_mpi_last_error() then holds MPI's own text for it.
 *
 * Threads: the adapter's MPI calls are made from the thread that makes
 * libvae's collective call.  Any MPI thread level will do if that is the
 * thread that initialised MPI; otherwise MPI must be initialised with
 * MPI_THREAD_SERIALIZED or above.
 */
#ifndef VAE_MPI_H
#define VAE_MPI_H

#include <mpi.h>
#include <stdint.h>
#include <vae.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(VAE_MPI_BUILDING)
#define VAE_MPI_API __attribute__((visibility("default")))
#else
#define VAE_MPI_API
#endif

/* An MPI communicator wrapped for libvae; opaque. */
typedef struct vae_mpi vae_mpi;

/* Wraps comm for libvae.  It duplicates comm (MPI_Comm_dup, so libvae's
   collectives never match the host's own messages), sets MPI_ERRORS_RETURN
   on the duplicate (so a failed collective becomes VAE_ERR_COMM from libvae
   instead of aborting the job) and makes a vae_comm of comm's rank and
   size whose sum is MPI_Allreduce(MPI_IN_PLACE, ..., MPI_SUM) and whose
   broadcast is MPI_Bcast, both in pieces of at most 8 MiB (MPI counts are
   int; and Open MPI 4.1 is much slower on one large all-reduce over shared
   memory).  The optional halves of the sum are left out: see
   vae_mpi_shard_update.  MPI must be initialised and not finalised.
   Collective over comm; every rank returns the same status (a rank that
   failed returns its own, the others VAE_ERR_COMM).  Errors in
   MPI_Comm_dup itself follow comm's error handler, by default fatal.
   Returns VAE_OK; VAE_ERR_ARGUMENT if out is NULL; VAE_ERR_COMM if MPI is
   not initialised, is finalised or an MPI call fails; VAE_ERR_NO_MEMORY.
   *out is set on success only. */
VAE_MPI_API vae_status vae_mpi_create(vae_mpi **out, MPI_Comm comm);
/* Sets the optional halves of the sum on m's communicator, so that
   vae_model_train_epoch shards the optimizer's update between the ranks:
   its reduce_scatter is one MPI_Reduce_scatter(MPI_IN_PLACE, ...,
   MPI_SUM) and its allgather one MPI_Allgatherv(MPI_IN_PLACE, ...), over
   the whole array (the parts are those of include/vae.h); these fail, on
   every rank, when a rank's part or its offset exceeds INT_MAX floats.
   Off by default: on one machine with Open MPI 4.1's shared-memory
   transport the pair took twice the time of the all-reduce (R3's 28 MB:
   9.0 ms against 4.6 ms) and the sharded update trained no faster
   (docs/DISTRIBUTED.md); it gives the same results as the summed update.
   Not collective, but every rank must make the same choice.  Returns
   VAE_OK; VAE_ERR_ARGUMENT for a NULL m. */
VAE_MPI_API vae_status vae_mpi_shard_update(vae_mpi *m);
/* The communicator to pass to vae_model_set_comm; it belongs to m.
   NULL for a NULL m. */
VAE_MPI_API vae_comm *vae_mpi_comm(const vae_mpi *m);
/* Frees the vae_comm and the duplicate communicator; the models using the
   vae_comm must be freed or detached first.  Collective over the
   communicator given to vae_mpi_create (MPI_Comm_free is), and to be called
   before MPI_Finalize; after it only the memory is freed.  NULL does
   nothing. */
VAE_MPI_API void vae_mpi_free(vae_mpi *m);
/* The number of ranks of m on this machine (those that share memory with
   this one: MPI_Comm_split_type with MPI_COMM_TYPE_SHARED, computed once
   by vae_mpi_create), and this rank's index among them (0 .. size - 1).
   Lets a host give each rank its share of the cores.  1 and 0 for a NULL
   m. */
VAE_MPI_API int vae_mpi_local_size(const vae_mpi *m);
VAE_MPI_API int vae_mpi_local_rank(const vae_mpi *m);
/* The time this rank spent inside the adapter's collectives (seconds by
   MPI_Wtime), how many it made and the bytes it summed or broadcast,
   since vae_mpi_create or the last vae_mpi_stats_reset.  A reduce-scatter
   and an all-gather each count as one call of the whole array's bytes:
   the pair counts twice the calls and bytes of the one sum it replaces.
   Any pointer may be NULL; a NULL m gives zeros. */
VAE_MPI_API void vae_mpi_stats(const vae_mpi *m, double *seconds, int64_t *calls,
                               int64_t *bytes);
VAE_MPI_API void vae_mpi_stats_reset(vae_mpi *m);
/* The number of processes in the job as the launcher's environment gives
   it, read without initialising MPI: OMPI_COMM_WORLD_SIZE (Open MPI's
   mpirun) or PMI_SIZE (MPICH's and Intel MPI's mpiexec, Slurm's srun
   --mpi=pmi2); 1 when only PMIX_RANK tells of a launcher (srun
   --mpi=pmix: the size is known after MPI_Init); 0 when the process was
   not started by an MPI launcher.  A program calls MPI_Init only when it is
   positive, so run without mpirun it never initialises MPI. */
VAE_MPI_API int vae_mpi_launched_size(void);
/* The message of the last failure of a vae_mpi call, or of an MPI call in
   the adapter's callbacks, on the calling thread ("" before any). */
VAE_MPI_API const char *vae_mpi_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
