/* vae-cifar10-iaf: reference run R3, an MLP VAE with an inverse
   autoregressive flow on CIFAR-10. */
#include "app.h"

#include <stdio.h>

static const char FETCH_HINT[] =
    "CIFAR-10 cannot be downloaded by this program.  Get the binary version "
    "(cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html), unpack it and "
    "pass --data .../cifar-10-batches-bin.  In a libvae source tree, scripts/make-cifar-demo.sh "
    "DIR writes a stand-in in the same format (it is not installed).";

static int load_cifar(const ex_options *o, vae_dataset **train, vae_dataset **test)
{
    vae_status s = vae_dataset_load_cifar10(train, o->data_dir, 1);
    if (s == VAE_OK)
        s = vae_dataset_load_cifar10(test, o->data_dir, 0);
    if (s == VAE_OK)
        return 0;
    fprintf(stderr, "vae-cifar10-iaf: %s (%s)\n", vae_last_error(), vae_strerror(s));
    if (s == VAE_ERR_IO)
        fprintf(stderr, "%s\n", FETCH_HINT);
    return 1;
}

int main(int argc, char **argv)
{
    app a = {
        .name = "vae-cifar10-iaf",
        .description =
            "Trains an MLP VAE with inverse autoregressive flow on CIFAR-10 (reference run R3: "
            "a tanh Gaussian MLP encoder of 500 units with mean, log-variance and a 500-wide "
            "context, 3 IAF steps of 500 hidden units, a tanh Bernoulli MLP decoder of 500 units; "
            "Adam 1e-4, batch 32, 100 epochs; --flow-steps 0 is the baseline without the flow) "
            "and writes metrics.csv (with test bits per dimension), loss.png, "
            "reconstructions.png (originals above reconstructions), samples.png (from the "
            "prior), latent.csv, last.vae / best.vae and, with --eval-iw K, eval.csv.",
        .fetch_hint = FETCH_HINT,
        .objective = VAE_OBJECTIVE_ELBO,
        .beta = 1.0f,
        .net = &app_mlp_net,
        .load = load_cifar,
    };
    ex_options_init(&a.defaults);
    a.defaults.data_dir = "data/cifar-10-batches-bin";
    a.defaults.out_dir = "out/cifar10-iaf";
    a.defaults.epochs = 100;
    a.defaults.batch = 32;
    a.defaults.hidden[0] = 500;
    a.defaults.n_hidden = 1;
    a.defaults.latent = 500;
    a.defaults.flow_steps = 3;
    a.defaults.iaf_hidden = 500;
    a.defaults.optimizer = VAE_OPTIMIZER_ADAM;
    a.defaults.lr = 1e-4;
    return app_main(argc, argv, &a);
}
