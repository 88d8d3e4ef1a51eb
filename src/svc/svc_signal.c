#include "svc_signal.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t svc_stop_flag = 0;

static void on_signal(int sig)
{
    if (svc_stop_flag)
        _exit(128 + sig);
    svc_stop_flag = 1;
}

int svc_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return -1;
    return 0;
}

int svc_stop_requested(void)
{
    return svc_stop_flag != 0;
}

int svc_sleep_ms(long ms, volatile sig_atomic_t *stop)
{
    while (ms > 0 && !*stop) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return *stop != 0;
}

double svc_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC on Linux */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
