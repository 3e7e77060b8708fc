/* The networks of the reference runs, built from the public layers. */
#include "app.h"

#include <stdio.h>

/* R1/R4: Dense hidden layers (ReLU), mean and log-variance heads; the
   decoder mirrors the hidden layers and ends in one logit per pixel. */
vae_status app_dense_net(vae_graph *g, int x, const ex_options *o, int *mu, int *logvar, int *z,
                         int *logits)
{
    int h = x, pixels = (int)vae_graph_node_size(g, x);
    char name[32];
    for (int i = 0; i < o->n_hidden; i++) {
        snprintf(name, sizeof name, "encoder.%d", i);
        VAE_CHECK(vae_layer_dense(g, h, o->hidden[i], VAE_ACT_RELU, name, &h));
    }
    VAE_CHECK(vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, o->latent, 0, "latent", mu, logvar, NULL));
    VAE_CHECK(vae_op_sample_normal(g, *mu, *logvar, z));
    h = *z;
    for (int i = o->n_hidden - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "decoder.%d", i);
        VAE_CHECK(vae_layer_dense(g, h, o->hidden[i], VAE_ACT_RELU, name, &h));
    }
    return vae_layer_dense(g, h, pixels, VAE_ACT_NONE, "decoder.logits", logits);
}

/* R2, the Keras book's network: Conv 32 -> Conv 64 stride 2 -> Conv 64 ->
   Conv 64 (3x3, same, ReLU) -> Flatten -> Dense(hidden[0], ReLU) -> heads;
   decoder Dense(64 x H/2 x W/2, ReLU) -> Reshape -> Conv2DTranspose 32
   stride 2 (ReLU) -> Conv 3x3 to the image's channels (logits). */
vae_status app_conv_net(vae_graph *g, int x, const ex_options *o, int *mu, int *logvar, int *z,
                        int *logits)
{
    static const int filters[4] = {32, 64, 64, 64}, strides[4] = {1, 2, 1, 1};
    int dims[3], h = x, flat, small[3];
    char name[32];
    vae_graph_node_dims(g, x, dims);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "encoder.conv%d", i);
        VAE_CHECK(vae_layer_conv2d(g, h, filters[i], 3, strides[i], VAE_PADDING_SAME, VAE_ACT_RELU,
                                   name, &h));
    }
    vae_graph_node_dims(g, h, small);
    VAE_CHECK(vae_layer_dense(g, h, o->hidden[0], VAE_ACT_RELU, "encoder.dense", &h));
    VAE_CHECK(vae_layer_gaussian_mlp(g, h, 0, VAE_ACT_NONE, o->latent, 0, "latent", mu, logvar, NULL));
    VAE_CHECK(vae_op_sample_normal(g, *mu, *logvar, z));
    VAE_CHECK(vae_layer_dense(g, *z, small[0] * small[1] * small[2], VAE_ACT_RELU, "decoder.dense", &flat));
    VAE_CHECK(vae_op_reshape(g, flat, 3, small, &h));
    VAE_CHECK(vae_layer_conv2d_transpose(g, h, 32, 3, 2, VAE_PADDING_SAME, VAE_ACT_RELU,
                                         "decoder.deconv", &h));
    return vae_layer_conv2d(g, h, dims[0], 3, 1, VAE_PADDING_SAME, VAE_ACT_NONE, "decoder.logits",
                            logits);
}
