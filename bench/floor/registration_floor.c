// registration_floor.c: what the kernel alone costs to register one IRC
// client over loopback TCP, with no server work around it.
//
// A server thread does what any epoll server must per registration and
// nothing else: accept4, one epoll_ctl to watch the socket, one recv of
// the client's NICK and USER, one send of a WELCOME-byte welcome (Parlor
// sends the bench 1,422 bytes). A client thread keeps 100 registrations
// in flight, as `parlor-bench connect` does, and holds every connection
// open. Prints the server thread's CPU per registration (getrusage
// RUSAGE_THREAD: user and system time, the loopback paths included).
//
//   cc -O2 -pthread -o registration_floor registration_floor.c
//   ./registration_floor [CLIENTS] [WELCOME]
//
// Only 127.0.0.1 is used. Every loop is bounded by its count, and a side
// that waits 5 s for anything gives up.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_FLIGHT 100
// The last few clients may still be on their way when the server's count
// is read; they are left out of both sides of the division.
#define LEFT_OUT 10

static int clients = 9000, welcome_bytes = 1422;
static struct sockaddr_in addr;

static void die(const char *what) {
    perror(what);
    exit(1);
}

enum { NOT_SENT = -1, DONE = -2 };

static void *register_clients(void *unused) {
    (void)unused;
    int ep = epoll_create1(0);
    int fd_limit = clients * 2 + 64;
    int *received = calloc(fd_limit, sizeof(int));
    if (ep < 0 || !received) die("client setup");
    const char *registration = "NICK floor\r\nUSER floor 0 * :floor\r\n";
    static char buf[8192];
    struct epoll_event evs[256];
    int started = 0, finished = 0, in_flight = 0;
    while (finished < clients) {
        while (in_flight < IN_FLIGHT && started < clients) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0 || fd >= fd_limit) die("client socket");
            connect(fd, (void *)&addr, sizeof addr);  // EINPROGRESS is expected
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLET, .data.fd = fd};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("client epoll_ctl");
            received[fd] = NOT_SENT;
            started++;
            in_flight++;
        }
        int n = epoll_wait(ep, evs, 256, 5000);
        if (n <= 0) {
            fprintf(stderr, "client: nothing for 5 s after %d registrations\n", finished);
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (received[fd] == NOT_SENT && (evs[i].events & EPOLLOUT)) {
                send(fd, registration, strlen(registration), 0);
                received[fd] = 0;
            }
            if (received[fd] >= 0 && (evs[i].events & EPOLLIN)) {
                ssize_t r;
                while ((r = read(fd, buf, sizeof buf)) > 0) received[fd] += r;
                if (received[fd] >= welcome_bytes) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);  // held open, idle
                    received[fd] = DONE;
                    finished++;
                    in_flight--;
                }
            }
        }
    }
    return NULL;
}

static double micros(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

int main(int argc, char **argv) {
    if (argc > 1) clients = atoi(argv[1]);
    if (argc > 2) welcome_bytes = atoi(argv[2]);
    if (clients <= LEFT_OUT || clients > 30000 || welcome_bytes < 1 || welcome_bytes > 65536) {
        fprintf(stderr, "usage: registration_floor [CLIENTS 11-30000] [WELCOME 1-65536]\n");
        return 2;
    }
    // Both ends of every connection stay open.
    struct rlimit files;
    rlim_t need = (rlim_t)clients * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &files) < 0) die("getrlimit");
    if (files.rlim_max != RLIM_INFINITY && files.rlim_max < need) {
        fprintf(stderr, "registration_floor: needs %lu open files; the hard limit is %lu\n",
                (unsigned long)need, (unsigned long)files.rlim_max);
        return 1;
    }
    files.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &files) < 0) die("setrlimit");
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int one = 1;
    if (listener < 0 || bind(listener, (void *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0 ||
        getsockname(listener, (void *)&addr, &len) < 0)
        die("listener");
    // Accepted sockets inherit it, as Parlor's do.
    setsockopt(listener, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int ep = epoll_create1(0);
    struct epoll_event listening = {.events = EPOLLIN, .data.fd = listener};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &listening) < 0) die("server epoll");
    char *welcome = malloc(welcome_bytes);
    memset(welcome, 'w', welcome_bytes);
    static char buf[4096];

    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    pthread_t client;
    if (pthread_create(&client, NULL, register_clients, NULL) != 0) die("pthread_create");
    int registered = 0, counted = clients - LEFT_OUT;
    struct epoll_event evs[256];
    while (registered < counted) {
        int n = epoll_wait(ep, evs, 256, 5000);
        if (n <= 0) {
            fprintf(stderr, "server: nothing for 5 s after %d registrations\n", registered);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                             .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) die("epoll_ctl");
                }
            } else if (evs[i].events & EPOLLIN) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0 && memmem(buf, r, "USER", 4)) {
                    send(fd, welcome, welcome_bytes, MSG_DONTWAIT);
                    registered++;
                }
            }
        }
    }
    getrusage(RUSAGE_THREAD, &after);
    double user = (micros(after.ru_utime) - micros(before.ru_utime)) / counted;
    double system = (micros(after.ru_stime) - micros(before.ru_stime)) / counted;
    printf("{\"floor\": \"registration\", \"clients\": %d, \"welcome_bytes\": %d, "
           "\"cpu_us_per_registration\": %.2f, \"user_us\": %.2f, \"system_us\": %.2f}\n",
           counted, welcome_bytes, user + system, user, system);
    fflush(stdout);
    // The client thread may still wait on its last few; the figure is in.
    _exit(0);
}
