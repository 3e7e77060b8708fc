/* A program outside the project that uses an installed libvae. */
#include <vae.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    vae_graph *g;
    int dims[1] = {4}, x;
    if (vae_version_number() != VAE_VERSION_NUMBER ||
        strcmp(vae_version_string(), VAE_VERSION_STRING) != 0) {
        fprintf(stderr, "header and library versions differ\n");
        return 1;
    }
    if (vae_graph_create(&g, 1) != VAE_OK || vae_graph_input(g, "x", 1, dims, &x) != VAE_OK) {
        fprintf(stderr, "error: %s\n", vae_last_error());
        return 1;
    }
    vae_graph_free(g);
    printf("consumer: libvae %s, %s\n", vae_version_string(), vae_blas_info());
    return 0;
}
