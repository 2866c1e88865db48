/*
 * Diagnostic shim of bench/reports.sh (not part of the service): an LD_PRELOAD library
 * that sets TCP_NODELAY on every TCP socket the process accepts.
 *
 * Without TCP_NODELAY, a unary gRPC response is written as HEADERS + DATA and then,
 * separately, the trailers; Nagle's algorithm holds the trailers until the client ACKs
 * the first segment, and a client that has nothing to send (h2load) ACKs after its
 * delayed-ACK timer (40 ms on Linux). tradewatch used to leave Nagle on for the sockets
 * it accepted (it serves through TcpListenerStream, for which tonic sets nothing); it
 * sets TCP_NODELAY itself since commit a0dcc8e. `BENCH_NODELAY_PASS=1 bash
 * bench/reports.sh` runs the rounds a second time with this shim: the two passes agree
 * while the server sets TCP_NODELAY, and differ by ~40 ms a call if that regresses.
 *
 * Build: cc -shared -fPIC -O2 -o nodelay_preload.so nodelay_preload.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static void set_nodelay(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int one = 1;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, addrlen, flags);
    set_nodelay(c);
    return c;
}

int accept(int fd, struct sockaddr *addr, socklen_t *addrlen) {
    static int (*real)(int, struct sockaddr *, socklen_t *);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
    int c = real(fd, addr, addrlen);
    set_nodelay(c);
    return c;
}
