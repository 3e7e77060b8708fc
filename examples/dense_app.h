/* The program behind vae-mnist-dense and vae-fashion-mnist: a dense VAE on
   idx-format images, trained and shown as the reference runs describe. */
#ifndef DENSE_APP_H
#define DENSE_APP_H

#include "common/excommon.h"

typedef struct dense_app {
    const char *name;         /* program name for messages */
    const char *description;  /* for --help */
    const char *fetch_hint;   /* how to get the data when it is missing */
    ex_options defaults;      /* the run's defaults */
} dense_app;

int dense_app_main(int argc, char **argv, const dense_app *app);

#endif
