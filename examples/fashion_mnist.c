/* vae-fashion-mnist: reference run R4, a dense VAE on Fashion-MNIST. */
#include "dense_app.h"

int main(int argc, char **argv)
{
    dense_app app = {
        .name = "vae-fashion-mnist",
        .description =
            "Trains a dense VAE on Fashion-MNIST (reference run R4, TensorFlow 2 style: one ReLU "
            "hidden layer of 512 mirrored in the decoder, a 2-D latent, BCE + KL, Adam 1e-3, "
            "batch 128, 20 epochs) and writes the same pictures and files as vae-mnist-dense.",
        .fetch_hint = "Install Debian's dataset-fashion-mnist (scripts/fetch-fashion-mnist.sh), "
                      "or pass --data DIR with the four idx files.",
    };
    ex_options_init(&app.defaults);
    app.defaults.data_dir = "/usr/share/datasets/fashion-mnist";
    app.defaults.out_dir = "out/fashion-mnist";
    app.defaults.epochs = 20;
    app.defaults.batch = 128;
    app.defaults.hidden[0] = 512;
    app.defaults.n_hidden = 1;
    app.defaults.latent = 2;
    return dense_app_main(argc, argv, &app);
}
