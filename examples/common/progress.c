/* Training progress on stderr: a one-line bar redrawn on a terminal, else
   plain lines that logs (and scripts waiting for training to be under
   way) can read. */
#include "excommon.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Columns of the terminal; 80 when it will not say.  The line must fit,
   or the \r redraw would leave a trail of wrapped lines. */
static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void ex_progress_begin(ex_progress *p, int epoch, int epochs, int batches)
{
    memset(p, 0, sizeof *p);
    p->epoch = epoch;
    p->epochs = epochs;
    p->batches = batches > 0 ? batches : 1;
    p->tty = isatty(STDERR_FILENO);
    p->start = ex_now();
    p->last_draw = -1.0;
}

/* "m:ss", or "h:mm:ss" from an hour up. */
static void format_duration(char *buf, size_t size, double seconds)
{
    long s = seconds > 0.0 && seconds < 1e8 ? (long)(seconds + 0.5) : 0;
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

/* Draw "epoch e/E [#####.....] b/B loss L  N img/s  ETA m:ss", the bar
   taking whatever width the rest leaves (none on a narrow terminal). */
static void draw(ex_progress *p, int batch, float loss, double ips, double now)
{
    char eta[32], left[64], right[96], bar[64];
    double elapsed = now - p->start;
    format_duration(eta, sizeof eta,
                    batch > 0 ? elapsed / batch * (p->batches - batch) : 0.0);
    snprintf(left, sizeof left, "epoch %d/%d ", p->epoch, p->epochs);
    snprintf(right, sizeof right, " %d/%d  loss %.4g  %.0f img/s  ETA %s", batch, p->batches,
             (double)loss, ips, eta);
    int room = terminal_columns() - 1 - (int)strlen(left) - (int)strlen(right);
    int width = room - 2 > 40 ? 40 : room - 2; /* minus the brackets */
    bar[0] = '\0';
    if (width >= 10) {
        int fill = (int)((double)width * batch / p->batches);
        bar[0] = '[';
        for (int i = 0; i < width; i++)
            bar[1 + i] = i < fill ? '#' : '.';
        bar[width + 1] = ']';
        bar[width + 2] = '\0';
    }
    char line[256];
    int len = snprintf(line, sizeof line, "%s%s%s", left, bar, right);
    /* Blanks over what is left of a longer previous line, no escape codes
       needed, so even a dumb terminal shows it right. */
    fprintf(stderr, "\r%s%*s", line, p->drawn_len > len ? p->drawn_len - len : 0, "");
    fflush(stderr);
    p->drawn_len = len;
}

/* Off a terminal, one line after the first batch of each epoch, so a log
   shows at once that training runs, then one every LOG_EVERY seconds. */
enum { LOG_EVERY = 10 };

static void log_line(ex_progress *p, int batch, float loss, double ips, double now)
{
    if (p->last_draw >= 0.0 && now - p->last_draw < LOG_EVERY)
        return;
    p->last_draw = now;
    fprintf(stderr, "epoch %d/%d  batch %d/%d  loss %.4g  %.0f img/s\n", p->epoch, p->epochs,
            batch, p->batches, (double)loss, ips);
    fflush(stderr);
}

void ex_progress_update(ex_progress *p, int batch, float loss, double images_per_sec)
{
    double now = ex_now();
    if (!p->tty) {
        log_line(p, batch, loss, images_per_sec, now);
        return;
    }
    /* Redrawing costs a write to the terminal; ten times a second is as
       often as anyone can read it.  The last batch is always shown. */
    if (batch < p->batches && p->last_draw >= 0.0 && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    draw(p, batch, loss, images_per_sec, now);
}

void ex_progress_end(ex_progress *p)
{
    if (!p->tty || p->drawn_len == 0)
        return;
    fprintf(stderr, "\r%*s\r", p->drawn_len, "");
    fflush(stderr);
    p->drawn_len = 0;
}
