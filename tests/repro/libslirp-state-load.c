/*
 * libslirp: slirp_state_load() allocates as much as a socket buffer's
 * length in the state says, before reading any of its data.
 *
 * QEMU loads a VM's user networking state from an incoming migration
 * stream with slirp_state_load(), so the source of a migration decides
 * how much the destination allocates.  QEMU's migration fuzzer found it
 * (a 3688618971-byte allocation); the state below is the smallest one
 * that does it with the current state version: a socket whose two
 * addresses are AF_INET, then 0xdb bytes, which its receive buffer takes
 * as its length, 0xdbdbdbdb.  sbreserve() asks g_realloc() for it; with
 * the address space limited to 1 GiB, GLib aborts:
 *
 *   GLib-ERROR **: ...: failed to allocate 3688618971 bytes
 *
 * A libslirp that refuses the length returns from slirp_state_load()
 * with an error, and this program says so and exits 0.
 *
 * Build: cc libslirp-state-load.c $(pkg-config --cflags --libs slirp glib-2.0)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <glib.h>
#include <slirp/libslirp.h>

static uint8_t state[160];
static size_t pos;

static void state_init(void)
{
    state[0] = 1;                       /* a socket follows */
    /* 1-4: so_urgc; 5-12: fhost: AF_INET, address, port */
    state[6] = AF_INET;
    state[14] = AF_INET;                /* 13-20: lhost, the same */
    memset(state + 21, 0xdb, 100);      /* the rest, so_rcv among it */
}

static ssize_t read_state(void *buf, size_t len, void *opaque)
{
    size_t n = MIN(len, sizeof(state) - pos);

    memcpy(buf, state + pos, n);
    memset((uint8_t *)buf + n, 0, len - n);     /* zeros after the end */
    pos += n;
    return len;
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
    return len;
}

static void guest_error(const char *msg, void *opaque)
{
    fprintf(stderr, "guest error: %s\n", msg);
}

static int64_t clock_get_ns(void *opaque)
{
    return g_get_monotonic_time() * 1000;
}

static void *timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    return g_new0(int, 1);
}

static void timer_free(void *timer, void *opaque)
{
    g_free(timer);
}

static void timer_mod(void *timer, int64_t expire_time, void *opaque)
{
}

static void poll_fd(int fd, void *opaque)
{
}

static void notify(void *opaque)
{
}

int main(void)
{
    const SlirpCb cb = {
        .send_packet = send_packet,
        .guest_error = guest_error,
        .clock_get_ns = clock_get_ns,
        .timer_new = timer_new,
        .timer_free = timer_free,
        .timer_mod = timer_mod,
        .register_poll_fd = poll_fd,
        .unregister_poll_fd = poll_fd,
        .notify = notify,
    };
    SlirpConfig cfg = { .version = 1, .in_enabled = true };
    struct rlimit as = { 1UL << 30, 1UL << 30 };
    int version = slirp_state_version();
    Slirp *slirp;
    int ret;

    /* QEMU's -netdev user defaults */
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    slirp = slirp_new(&cfg, &cb, NULL);
    state_init();
    setrlimit(RLIMIT_AS, &as);
    printf("libslirp %s, state version %d: loading %zu bytes\n",
           slirp_version_string(), version, sizeof(state));
    fflush(stdout);
    ret = slirp_state_load(slirp, version, read_state, NULL);
    printf("slirp_state_load() returned %d after %zu bytes\n", ret, pos);
    slirp_cleanup(slirp);
    return 0;
}
