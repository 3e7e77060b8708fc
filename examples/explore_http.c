/* HTTP for vae-explore with libmicrohttpd: the page, two JSON answers and
   four kinds of PNG (docs/EXPLORE.md).  No URL reaches the file system:
   every path is one of the routes below.  Every parameter is checked here
   before the model runs; a bad one is a 400 with a one-line message. */
#include "explore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNECTIONS 64
#define IDLE_SECONDS 10
/* Per connection: the request line and headers must fit in it (with room
   for the answer's headers), which caps a request at about 15 KiB, room
   for a z of 1,000 numbers. */
#define CONNECTION_MEMORY (16 * 1024)
#define MAX_ARGS 4          /* query parameters looked at; more is an error */
#define MAX_Z_MAGNITUDE 1e4 /* far outside any latent's prior */

/* ---- answers ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (!strcmp(type, "text/html; charset=utf-8"))
        /* the page is self-contained: it may talk to this server only */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src "
                                "'unsafe-inline'; img-src 'self' blob:; connect-src 'self'");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *fmt,
                                   ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof text - 2)
        n = (int)sizeof text - 2;
    text[n] = '\n';
    return reply(c, status, "text/plain; charset=utf-8", text, (size_t)n + 1,
                 MHD_RESPMEM_MUST_COPY);
}

/* A renderer's PNG, or a 500 with why it failed (the model, not the
   request: out of memory, say). */
static enum MHD_Result reply_png(struct MHD_Connection *c, const char *err, unsigned char *png,
                                 size_t len)
{
    if (err) {
        free(png);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
    }
    return reply(c, MHD_HTTP_OK, "image/png", png, len, MHD_RESPMEM_MUST_FREE);
}

/* ---- query parameters ---- */

typedef struct query {
    int count;
    const char *name[MAX_ARGS], *value[MAX_ARGS];
} query;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *name,
                               const char *value)
{
    query *q = cls;
    (void)kind;
    if (q->count < MAX_ARGS) {
        q->name[q->count] = name;
        q->value[q->count] = value;
    }
    q->count++;
    return MHD_YES;
}

static const char *param(const query *q, const char *name)
{
    for (int i = 0; i < q->count; i++)
        if (!strcmp(q->name[i], name))
            return q->value[i] ? q->value[i] : "";
    return NULL;
}

/* Whether `name` is one of the comma-separated names in `list`. */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *a = list; *a; a += strcspn(a, ",") + (a[strcspn(a, ",")] == ','))
        if (strcspn(a, ",") == n && !strncmp(a, name, n))
            return 1;
    return 0;
}

/* NULL if every parameter is one of `allowed` (comma-separated) and none
   repeats; else the message. */
static const char *check_names(const query *q, const char *allowed, char *why, size_t size)
{
    if (q->count > MAX_ARGS)
        return "too many parameters";
    for (int i = 0; i < q->count; i++) {
        if (!*q->name[i] || !listed(allowed, q->name[i])) {
            snprintf(why, size, "unknown parameter '%.40s' (this path takes %s)", q->name[i],
                     *allowed ? allowed : "none");
            return why;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(q->name[i], q->name[j])) {
                snprintf(why, size, "parameter '%s' given twice", q->name[i]);
                return why;
            }
    }
    return NULL;
}

/* A whole number of decimal digits at most `max`; -1 if it is not. */
static int whole_number(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 20)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v > max)
        return -1;
    *out = v;
    return 0;
}

/* z: exactly `latent` finite decimal numbers, comma-separated.  NULL, or
   the message. */
static const char *parse_z(const char *s, int latent, float *z, char *why, size_t size)
{
    int count = 1;
    for (const char *p = s; *p; p++)
        count += *p == ',';
    if (!*s)
        return "z is empty: give the latent point, e.g. z=0.5,-1.25";
    if (count != latent) {
        snprintf(why, size, "z has %d number%s; the model's latent has %d", count,
                 count == 1 ? "" : "s", latent);
        return why;
    }
    for (int k = 0; k < latent; k++) {
        size_t n = strcspn(s, ",");
        char *end;
        /* decimal only: strtod alone would take "inf", "nan" and hex */
        double v = n && strspn(s, "0123456789+-.eE") >= n ? strtod(s, &end) : NAN;
        if (isnan(v) || end != s + n || !(fabs(v) <= MAX_Z_MAGNITUDE)) {
            /* a '+' in a query string arrives as a space */
            const char *hint = memchr(s, ' ', n) ? " (in a URL, write + as %2B)" : "";
            snprintf(why, size, "z's number %d ('%.*s') is not a decimal number within +-%g%s",
                     k + 1, n > 40 ? 40 : (int)n, s, MAX_Z_MAGNITUDE, hint);
            return why;
        }
        z[k] = (float)v;
        s += n + (s[n] == ',');
    }
    return NULL;
}

/* ---- routes ---- */

typedef enum MHD_Result (*route_fn)(explorer *ex, struct MHD_Connection *c, const query *q);

static enum MHD_Result get_page(explorer *ex, struct MHD_Connection *c, const query *q)
{
    (void)ex, (void)q;
    return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)explore_page_html,
                 explore_page_html_len, MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result get_info(explorer *ex, struct MHD_Connection *c, const query *q)
{
    (void)q;
    return reply(c, MHD_HTTP_OK, "application/json", ex->info_json, ex->info_len,
                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result get_scatter(explorer *ex, struct MHD_Connection *c, const query *q)
{
    (void)q;
    return reply(c, MHD_HTTP_OK, "application/json", ex->scatter_json, ex->scatter_len,
                 MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result get_decode(explorer *ex, struct MHD_Connection *c, const query *q)
{
    char why[160];
    const char *s = param(q, "z"), *err;
    if (!s)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "give z: the latent point, %d numbers",
                           ex->latent);
    float *z = malloc((size_t)ex->latent * sizeof *z);
    if (!z)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    if ((err = parse_z(s, ex->latent, z, why, sizeof why)) != NULL) {
        free(z);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err);
    }
    unsigned char *png = NULL;
    size_t len = 0;
    err = explore_decode_png(ex, z, &png, &len);
    free(z);
    return reply_png(c, err, png, len);
}

typedef const char *(*test_png_fn)(explorer *ex, int64_t i, unsigned char **png, size_t *len);

/* Test image i (the parameter) through `make`: the image, or its
   reconstruction. */
static enum MHD_Result test_image_reply(explorer *ex, struct MHD_Connection *c, const query *q,
                                        test_png_fn make)
{
    const char *s = param(q, "i");
    uint64_t i;
    if (ex->points == 0)
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "no test images (start vae-explore with --data)");
    if (!s || whole_number(s, (uint64_t)ex->points - 1, &i))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "give i, a test image's index from 0 to %lld",
                           (long long)ex->points - 1);
    unsigned char *png = NULL;
    size_t len = 0;
    const char *err = make(ex, (int64_t)i, &png, &len);
    return reply_png(c, err, png, len);
}

static enum MHD_Result get_image(explorer *ex, struct MHD_Connection *c, const query *q)
{
    return test_image_reply(ex, c, q, explore_image_png);
}

static enum MHD_Result get_reconstruct(explorer *ex, struct MHD_Connection *c, const query *q)
{
    return test_image_reply(ex, c, q, explore_reconstruct_png);
}

static enum MHD_Result get_samples(explorer *ex, struct MHD_Connection *c, const query *q)
{
    const char *seed_s = param(q, "seed"), *n_s = param(q, "n");
    uint64_t seed = 0, n = 16;
    if (seed_s && whole_number(seed_s, UINT64_MAX, &seed))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "seed is a whole number from 0 to %llu",
                           (unsigned long long)UINT64_MAX);
    if (n_s && (whole_number(n_s, EXPLORE_MAX_SAMPLES, &n) || n == 0))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "n is a whole number from 1 to %d",
                           EXPLORE_MAX_SAMPLES);
    unsigned char *png = NULL;
    size_t len = 0;
    const char *err = explore_samples_png(ex, seed, (int)n, &png, &len);
    return reply_png(c, err, png, len);
}

static const struct route {
    const char *path, *params;
    route_fn fn;
} routes[] = {
    {"/", "", get_page},
    {"/api/info", "", get_info},
    {"/api/scatter", "", get_scatter},
    {"/api/decode", "z", get_decode},
    {"/api/image", "i", get_image},
    {"/api/reconstruct", "i", get_reconstruct},
    {"/api/samples", "seed,n", get_samples},
};

/* A body was announced: this server takes none. */
static int has_body(struct MHD_Connection *c)
{
    const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
           (length && strcmp(length, "0") != 0);
}

/* libmicrohttpd calls this once the headers are in, then again when the
   request is complete.  A body is refused at the first call, before it is
   read (the connection then closes); everything else is answered at the
   second, which keeps the connection open for the next request. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    static int headers_seen;
    explorer *ex = cls;
    query q = {0};
    char why[160];
    (void)version, (void)upload_data;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
    if (has_body(c))
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "a request has no body here");
    if (!*req_cls) {
        *req_cls = &headers_seen;
        return MHD_YES;
    }
    if (*upload_data_size) { /* not announced, so cannot come; dropped if it did */
        *upload_data_size = 0;
        return MHD_YES;
    }
    for (size_t r = 0; r < sizeof routes / sizeof routes[0]; r++) {
        if (strcmp(url, routes[r].path) != 0)
            continue;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect, &q);
        const char *err = check_names(&q, routes[r].params, why, sizeof why);
        return err ? reply_error(c, MHD_HTTP_BAD_REQUEST, "%s", err) : routes[r].fn(ex, c, &q);
    }
    return reply_error(c, MHD_HTTP_NOT_FOUND,
                       "no such page: the page is /, the answers are under /api/ "
                       "(info, scatter, decode, image, reconstruct, samples)");
}

/* libmicrohttpd's own unescaping, except that a text holding %00 is left
   as it came: decoded, the NUL would cut "/api/info%00x" or "i=1%00x"
   short and make it pass for a valid path or number.  Left escaped, the
   '%' is refused like any other stray character. */
static size_t unescape_but_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strstr(s, "%00") ? strlen(s) : MHD_http_unescape(s);
}

/* libmicrohttpd's messages while it starts (why it could not); later ones
   (a client that went away, say) are not for the terminal. */
static atomic_int starting;

static void log_start_error(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (starting) {
        fputs("vae-explore: libmicrohttpd: ", stderr);
        vfprintf(stderr, fmt, ap);
    }
}

/* ---- the listening socket ---- */

/* Our own socket, so that a failure says why (address in use, say) and
   port 0 can tell which port it got.  -1 after a message. */
static int listen_on(const char *bind_addr, int port, int *bound_port)
{
    struct sockaddr_storage addr = {0};
    socklen_t addr_len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, bind_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, bind_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        addr_len = sizeof *v6;
    } else {
        fprintf(stderr, "vae-explore: --bind %s is not an IPv4 or IPv6 address\n", bind_addr);
        return -1;
    }
    int one = 1, fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        fprintf(stderr, "vae-explore: cannot listen on %s port %d: %s\n", bind_addr, port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *bound_port = ntohs(addr.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
    return fd;
}

struct MHD_Daemon *explore_http_start(explorer *ex, const char *bind_addr, int port,
                                      int workers, int *bound_port)
{
    int fd = listen_on(bind_addr, port, bound_port);
    if (fd < 0)
        return NULL;
    starting = 1;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        answer, ex, MHD_OPTION_EXTERNAL_LOGGER, log_start_error, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)workers,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_SECONDS, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_but_nul, NULL, MHD_OPTION_END);
    starting = 0;
    /* not closing fd on failure: libmicrohttpd has closed it on most paths */
    if (!d)
        fprintf(stderr, "vae-explore: libmicrohttpd could not start serving\n");
    return d;
}
