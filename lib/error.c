/* Status messages, the per-thread last error and logging. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];
static vae_log_fn log_fn;
static void *log_user;
static vae_log_level log_level = VAE_LOG_WARNING;

static const char *const status_names[] = {
    [VAE_OK] = "success",
    [VAE_ERR_ARGUMENT] = "invalid argument",
    [VAE_ERR_NO_MEMORY] = "out of memory",
    [VAE_ERR_IO] = "input/output error",
    [VAE_ERR_FORMAT] = "malformed or foreign file",
    [VAE_ERR_SHAPE] = "shapes do not fit",
    [VAE_ERR_NOT_FINITE] = "loss is not finite",
    [VAE_ERR_STATE] = "call does not fit the current state",
    [VAE_ERR_UNSUPPORTED] = "not supported",
    [VAE_ERR_STOPPED] = "stopped by callback",
    [VAE_ERR_CHECKSUM] = "checksum mismatch",
    [VAE_ERR_THREAD] = "could not start a thread",
    [VAE_ERR_COMM] = "a collective operation failed or the ranks disagree",
};

VAE_API const char *vae_strerror(vae_status status)
{
    if ((int)status < 0 || (size_t)status >= sizeof status_names / sizeof *status_names)
        return "unknown status";
    return status_names[status];
}

VAE_API const char *vae_last_error(void) { return last_error; }

VAE_API const char *vae_version_string(void) { return VAE_VERSION_STRING; }

VAE_API int vae_version_number(void) { return VAE_VERSION_NUMBER; }

VAE_API void vae_set_log_callback(vae_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

VAE_API void vae_set_log_level(vae_log_level level) { log_level = level; }

/* (in parentheses: not the analysers' macro of internal.h) */
vae_status (vae__fail)(vae_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

void vae__log(vae_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!log_fn || level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(log_user, level, msg);
}
