/* vae-faces-conv: reference run R2's convolutional VAE on a folder of colour
   photos (CelebA's aligned crops, say), centre-cropped and resized. */
#include "app.h"
#include "common/imagefolder.h"

#include <stdio.h>

/* Every 10th image (in name order) is held out as the test set. */
static int load_folder(const ex_options *o, vae_dataset **train, vae_dataset **test)
{
    ex_image_set all = {0}, held = {0};
    int rc = 1;
    if (ex_load_image_folder_limit(o->data_dir, o->size, o->limit > 0 ? o->limit + o->limit / 9 + 1 : 0, &all) ||
        ex_image_set_split(&all, 10, &held))
        goto done;
    {
        int dims[3] = {3, o->size, o->size};
        vae_status s = vae_dataset_from_u8(train, all.count, 3, dims, all.pixels, NULL, 1.0f / 255.0f);
        if (s == VAE_OK)
            s = vae_dataset_from_u8(test, held.count, 3, dims, held.pixels, NULL, 1.0f / 255.0f);
        if (s != VAE_OK)
            fprintf(stderr, "vae-faces-conv: %s\n", vae_last_error());
        else
            printf("vae-faces-conv: %d training and %d test images from %s\n", all.count,
                   held.count, o->data_dir);
        rc = s != VAE_OK;
    }
done:
    ex_image_set_free(&all);
    ex_image_set_free(&held);
    return rc;
}

int main(int argc, char **argv)
{
    app a = {
        .name = "vae-faces-conv",
        .description =
            "Trains the Keras book's convolutional VAE (reference run R2) on a folder of colour "
            "JPEG/PNG photos, centre-cropped and resized to --size, 3 output channels. After "
            "every epoch it writes reconstructions_epochNNN.png for a fixed set of test images "
            "and keeps best.vae (lowest test loss) beside last.vae. Every 10th image (by name) "
            "is the test set. Unreadable files are reported and skipped. Try --latent 64 on "
            "real photos; --hidden sets the encoder's dense layer.",
        .fetch_hint = "",
        .objective = VAE_OBJECTIVE_PIXEL_MEAN,
        .beta = 5e-4f,
        .net = &app_conv_net,
        .load = load_folder,
        .recon_every_epoch = 1,
    };
    ex_options_init(&a.defaults);
    a.defaults.data_dir = "data/faces";
    a.defaults.out_dir = "out/faces-conv";
    a.defaults.epochs = 10;
    a.defaults.batch = 100;
    a.defaults.hidden[0] = 32;
    a.defaults.n_hidden = 1;
    a.defaults.latent = 2;
    a.defaults.optimizer = VAE_OPTIMIZER_RMSPROP;
    a.defaults.lr = 1e-3;
    a.defaults.size = 64;
    return app_main(argc, argv, &a);
}
