/* The networks of the reference runs, built from the public layers.  Each
   has an encoder (latent mean, log-variance and, for a flow, a context
   vector) and a decoder (logits shaped like the input). */
#include "app.h"

#include <stdio.h>

/* R1/R4: Dense hidden layers (ReLU), mean and log-variance heads, and a
   context head as wide as the last hidden layer. */
static vae_status dense_encoder(vae_graph *g, int x, const ex_options *o, int with_context,
                                int *mu, int *logvar, int *h)
{
    int t = x, context = o->n_hidden > 0 ? o->hidden[o->n_hidden - 1] : o->latent;
    char name[32];
    for (int i = 0; i < o->n_hidden; i++) {
        snprintf(name, sizeof name, "encoder.%d", i);
        VAE_CHECK(vae_layer_dense(g, t, o->hidden[i], VAE_ACT_RELU, name, &t));
    }
    return vae_layer_gaussian_mlp(g, t, 0, VAE_ACT_NONE, o->latent, with_context ? context : 0,
                                  "latent", mu, logvar, h);
}

/* The hidden layers mirrored, then one logit per pixel. */
static vae_status dense_decoder(vae_graph *g, int z, int x, const ex_options *o, int *logits)
{
    int t = z;
    char name[32];
    for (int i = o->n_hidden - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "decoder.%d", i);
        VAE_CHECK(vae_layer_dense(g, t, o->hidden[i], VAE_ACT_RELU, name, &t));
    }
    return vae_layer_dense(g, t, (int)vae_graph_node_size(g, x), VAE_ACT_NONE, "decoder.logits",
                           logits);
}

const app_net app_dense_net = {dense_encoder, dense_decoder, 0};

/* R3: the "Gaussian MLP" encoder, one tanh hidden layer with mean,
   log-variance and context heads, and the "Bernoulli MLP" decoder, one tanh
   hidden layer then the logits; hidden[0] units in both. */
static vae_status mlp_encoder(vae_graph *g, int x, const ex_options *o, int with_context, int *mu,
                              int *logvar, int *h)
{
    return vae_layer_gaussian_mlp(g, x, o->hidden[0], VAE_ACT_TANH, o->latent,
                                  with_context ? o->hidden[0] : 0, "encoder", mu, logvar, h);
}

static vae_status mlp_decoder(vae_graph *g, int z, int x, const ex_options *o, int *logits)
{
    return vae_layer_bernoulli_mlp(g, z, o->hidden[0], VAE_ACT_TANH,
                                   (int)vae_graph_node_size(g, x), "decoder", logits);
}

const app_net app_mlp_net = {mlp_encoder, mlp_decoder, 1};

/* R2, the Keras book's network: Conv 32 -> Conv 64 stride 2 -> Conv 64 ->
   Conv 64 (3x3, same, ReLU) -> Flatten -> Dense(hidden[0], ReLU) -> heads
   (and a context head of hidden[0] for a flow). */
static vae_status conv_encoder(vae_graph *g, int x, const ex_options *o, int with_context, int *mu,
                               int *logvar, int *h)
{
    static const int filters[4] = {32, 64, 64, 64}, strides[4] = {1, 2, 1, 1};
    int t = x;
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "encoder.conv%d", i);
        VAE_CHECK(vae_layer_conv2d(g, t, filters[i], 3, strides[i], VAE_PADDING_SAME, VAE_ACT_RELU,
                                   name, &t));
    }
    VAE_CHECK(vae_layer_dense(g, t, o->hidden[0], VAE_ACT_RELU, "encoder.dense", &t));
    return vae_layer_gaussian_mlp(g, t, 0, VAE_ACT_NONE, o->latent,
                                  with_context ? o->hidden[0] : 0, "latent", mu, logvar, h);
}

/* Dense(64 x H/2 x W/2, ReLU) -> Reshape -> Conv2DTranspose 32 stride 2
   (ReLU) -> Conv 3x3 to the image's channels (logits). */
static vae_status conv_decoder(vae_graph *g, int z, int x, const ex_options *o, int *logits)
{
    int dims[3], small[3], flat, t;
    (void)o;
    vae_graph_node_dims(g, x, dims);
    small[0] = 64;
    small[1] = (dims[1] + 1) / 2; /* the stride-2 "same" convolution's output */
    small[2] = (dims[2] + 1) / 2;
    VAE_CHECK(vae_layer_dense(g, z, small[0] * small[1] * small[2], VAE_ACT_RELU, "decoder.dense",
                              &flat));
    VAE_CHECK(vae_op_reshape(g, flat, 3, small, &t));
    VAE_CHECK(vae_layer_conv2d_transpose(g, t, 32, 3, 2, VAE_PADDING_SAME, VAE_ACT_RELU,
                                         "decoder.deconv", &t));
    return vae_layer_conv2d(g, t, dims[0], 3, 1, VAE_PADDING_SAME, VAE_ACT_NONE, "decoder.logits",
                            logits);
}

const app_net app_conv_net = {conv_encoder, conv_decoder, 1};
