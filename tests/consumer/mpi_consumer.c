/* A program outside the project that uses an installed libvae_mpi: wraps
   MPI_COMM_WORLD for libvae and makes one collective through it.  Run alone
   (a singleton) or under mpirun; prints "rank R of N" on each rank, and
   what vae_mpi_launched_size() said before MPI_Init. */
#include <vae_mpi.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    vae_mpi *m = NULL;
    vae_status s;
    int rank, size, launched = vae_mpi_launched_size();
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if ((s = vae_mpi_create(&m, MPI_COMM_WORLD)) != VAE_OK) {
        fprintf(stderr, "rank %d: vae_mpi_create: %d: %s\n", rank, (int)s, vae_mpi_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (vae_comm_rank(vae_mpi_comm(m)) != rank || vae_comm_size(vae_mpi_comm(m)) != size) {
        fprintf(stderr, "rank %d of %d: the vae_comm says rank %d of %d\n", rank, size,
                vae_comm_rank(vae_mpi_comm(m)), vae_comm_size(vae_mpi_comm(m)));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if ((s = vae_comm_agree(vae_mpi_comm(m), VAE_OK)) != VAE_OK) {
        fprintf(stderr, "rank %d: vae_comm_agree: %d: %s / %s\n", rank, (int)s, vae_last_error(),
                vae_mpi_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    vae_mpi_free(m);
    printf("mpi_consumer: rank %d of %d agreed (libvae %s, launched size %d)\n", rank, size,
           vae_version_string(), launched);
    MPI_Finalize();
    return 0;
}
