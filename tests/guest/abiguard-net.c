/*
 * abiguard-net HOST PORT: the offloads guest's traffic, for
 * tests/offloads-test.py's peer (scripts/offloads-peer.py).
 *
 * TCP: one connection to HOST:PORT carrying records "T%014u\n", numbered
 * from 0, 1 KiB every 20 ms.
 * UDP: every 200 ms, one send of SEGMENTS datagrams of SEGMENT bytes to
 * HOST:PORT with UDP_SEGMENT, so that the kernel segments them late: in the
 * virtio-net device when the guest negotiated VIRTIO_NET_F_HOST_USO, in
 * the guest otherwise.  Datagram n is "U%010u" then bytes (n + i) & 0xff.
 *
 * Runs until killed; prints "NET ERROR ..." and exits on a failed send.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

enum { SEGMENT = 1200, SEGMENTS = 8, RECORD = 16, RECORDS = 64 };

static void fail(const char *what)
{
    printf("NET ERROR %s: %s\n", what, strerror(errno));
    exit(1);
}

static void send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("tcp send");
        }
        buf += n;
        len -= n;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in peer = { .sin_family = AF_INET };
    static char datagrams[SEGMENT * SEGMENTS];
    char records[RECORD * RECORDS + 1];
    unsigned tcp_seq = 0, udp_seq = 0, tick;
    int gso = SEGMENT, tcp, udp;

    if (argc != 3 || inet_pton(AF_INET, argv[1], &peer.sin_addr) != 1) {
        fprintf(stderr, "usage: abiguard-net HOST PORT\n");
        return 2;
    }
    peer.sin_port = htons(atoi(argv[2]));
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    udp = socket(AF_INET, SOCK_DGRAM, 0);
    if (tcp < 0 || udp < 0) {
        fail("socket");
    }
    if (connect(tcp, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
        fail("tcp connect");
    }
    if (connect(udp, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
        fail("udp connect");
    }
    if (setsockopt(udp, IPPROTO_UDP, UDP_SEGMENT, &gso, sizeof(gso)) < 0) {
        fail("UDP_SEGMENT");
    }
    for (tick = 0;; tick++) {
        for (int i = 0; i < RECORDS; i++) {
            snprintf(records + i * RECORD, RECORD + 1, "T%014u\n", tcp_seq++);
        }
        send_all(tcp, records, RECORD * RECORDS);
        if (tick % 10 == 0) {
            for (int s = 0; s < SEGMENTS; s++, udp_seq++) {
                char *d = datagrams + s * SEGMENT, head[12];
                for (int i = 0; i < SEGMENT; i++) {
                    d[i] = (udp_seq + i) & 0xff;
                }
                snprintf(head, sizeof(head), "U%010u", udp_seq);
                memcpy(d, head, 11);
            }
            /* a full socket buffer drops, as UDP may */
            if (send(udp, datagrams, sizeof(datagrams), 0) < 0 &&
                errno != ENOBUFS && errno != EAGAIN) {
                fail("udp send");
            }
        }
        usleep(20000);
    }
}
