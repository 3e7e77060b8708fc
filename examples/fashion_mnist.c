/* vae-fashion-mnist: reference run R4, a dense VAE on Fashion-MNIST. */
#include "app.h"

int main(int argc, char **argv)
{
    app a = {
        .name = "vae-fashion-mnist",
        .description =
            "Trains a dense VAE on Fashion-MNIST (reference run R4, TensorFlow 2 style: one ReLU "
            "hidden layer of 512 mirrored in the decoder, a 2-D latent, BCE + KL, Adam 1e-3, "
            "batch 128, 20 epochs) and writes the same pictures and files as vae-mnist-dense.",
        .fetch_hint = "Install Debian's dataset-fashion-mnist (vae-fetch-fashion-mnist does, or "
                      "scripts/fetch-fashion-mnist.sh in a source tree), or pass --data DIR with "
                      "the four idx files.",
        .objective = VAE_OBJECTIVE_ELBO,
        .beta = 1.0f,
        .net = &app_dense_net,
    };
    ex_options_init(&a.defaults);
    a.defaults.data_dir = "/usr/share/datasets/fashion-mnist";
    a.defaults.out_dir = "out/fashion-mnist";
    a.defaults.epochs = 20;
    a.defaults.batch = 128;
    a.defaults.hidden[0] = 512;
    a.defaults.n_hidden = 1;
    a.defaults.latent = 2;
    return app_main(argc, argv, &a);
}
