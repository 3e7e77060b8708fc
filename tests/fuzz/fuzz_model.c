/* libFuzzer target: the model file, through vae_model_load_from_memory.
   The input's checksum is fixed up first (its last 4 bytes replaced by the
   CRC-32 of the rest), so that mutations reach the parser instead of
   stopping at the checksum; inputs ending in the right CRC are read as
   they are.  What loads is used: a memory cap, one row encoded and
   decoded, the optimizer restored.  Built with -fsanitize=fuzzer for
   fuzzing, and with replay.c for the regression runner of ctest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vae.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use(vae_model *m)
{
    int64_t in = vae_model_input_size(m), dims[2] = {1, in};
    int latent = vae_model_latent_size(m);
    int64_t zdims[2] = {1, latent > 0 ? latent : 1};
    vae_tensor *x = NULL, *mu = NULL, *lv = NULL, *z = NULL, *out = NULL;
    vae_optimizer *opt = NULL;
    /* planning memory is capped: a file may describe a huge network */
    vae_model_set_memory_limit(m, (int64_t)64 << 20);
    vae_model_set_max_batch(m, 1);
    if (in > 0 && in <= (1 << 20) && vae_tensor_create(&x, 2, dims) == VAE_OK &&
        vae_tensor_create(&mu, 2, zdims) == VAE_OK && vae_tensor_create(&lv, 2, zdims) == VAE_OK &&
        vae_tensor_create(&z, 2, zdims) == VAE_OK && vae_tensor_create(&out, 2, dims) == VAE_OK) {
        vae_model_encode(m, x, mu, lv);
        vae_model_decode(m, z, out);
    }
    if (vae_model_has_training_state(m))
        vae_optimizer_restore(&opt, m);
    vae_optimizer_free(opt);
    vae_tensor_free(x);
    vae_tensor_free(mu);
    vae_tensor_free(lv);
    vae_tensor_free(z);
    vae_tensor_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    vae_model *m = NULL;
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    if (size >= 24) {
        uint32_t crc = (uint32_t)crc32_z(0L, copy, size - 4);
        for (int i = 0; i < 4; i++)
            copy[size - 4 + i] = (unsigned char)(crc >> (8 * i));
    }
    if (vae_model_load_from_memory(&m, copy, size) == VAE_OK) {
        use(m);
        vae_model_free(m);
    }
    free(copy);
    return 0;
}
