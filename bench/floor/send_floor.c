// send_floor.c: what the kernel alone costs to send one line to one client
// over loopback TCP, with no server work around it.
//
// A writer thread sends a 100-byte line to each of N sockets every 2 ms,
// as a server fans a channel message out to N members, one send per
// member; a reader thread reads them all through one epoll, as the clients
// would. Prints the writer thread's CPU per send (getrusage RUSAGE_THREAD:
// its user and system time, the loopback receive path included, which the
// kernel runs in the sender's context).
//
//   cc -O2 -pthread -o send_floor send_floor.c && ./send_floor [N] [CYCLES]
//
// Only 127.0.0.1 is used. Every loop is bounded by its count, and the
// reader gives up after a second without data.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE 100
#define PERIOD_NS 2000000L

static int members = 199, cycles = 1000;
static int *client_fds;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *read_everything(void *unused) {
    (void)unused;
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < members; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = client_fds[i]};
        if (fcntl(client_fds[i], F_SETFL, O_NONBLOCK) < 0) die("fcntl");
        if (epoll_ctl(ep, EPOLL_CTL_ADD, client_fds[i], &ev) < 0) die("epoll_ctl");
    }
    static char buf[65536];
    struct epoll_event evs[256];
    long want = (long)members * cycles * LINE, received = 0;
    while (received < want) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n <= 0) {
            fprintf(stderr, "reader: nothing for a second after %ld of %ld bytes\n", received, want);
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            ssize_t r;
            while ((r = read(evs[i].data.fd, buf, sizeof buf)) > 0) received += r;
        }
    }
    return NULL;
}

static double micros(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

int main(int argc, char **argv) {
    if (argc > 1) members = atoi(argv[1]);
    if (argc > 2) cycles = atoi(argv[2]);
    if (members < 1 || members > 10000 || cycles < 1 || cycles > 100000) {
        fprintf(stderr, "usage: send_floor [MEMBERS 1-10000] [CYCLES 1-100000]\n");
        return 2;
    }
    // Both ends of every connection stay open.
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < (rlim_t)members * 2 + 64) {
        files.rlim_cur = files.rlim_max == RLIM_INFINITY || files.rlim_max > (rlim_t)members * 2 + 64
                             ? (rlim_t)members * 2 + 64
                             : files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int one = 1;
    if (listener < 0 || bind(listener, (void *)&addr, sizeof addr) < 0 || listen(listener, 4096) < 0 ||
        getsockname(listener, (void *)&addr, &len) < 0)
        die("listener");
    client_fds = calloc(members, sizeof(int));
    int *server_fds = calloc(members, sizeof(int));
    for (int i = 0; i < members; i++) {
        client_fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (client_fds[i] < 0 || connect(client_fds[i], (void *)&addr, sizeof addr) < 0) die("connect");
        server_fds[i] = accept(listener, NULL, NULL);
        if (server_fds[i] < 0) die("accept");
        setsockopt(server_fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pthread_t reader;
    if (pthread_create(&reader, NULL, read_everything, NULL) != 0) die("pthread_create");

    char line[LINE];
    memset(line, 'x', sizeof line);
    line[LINE - 2] = '\r';
    line[LINE - 1] = '\n';
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    struct rusage before, after;
    getrusage(RUSAGE_THREAD, &before);
    for (int c = 0; c < cycles; c++) {
        due.tv_nsec += PERIOD_NS;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_nsec -= 1000000000L;
            due.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL);
        for (int i = 0; i < members; i++)
            if (send(server_fds[i], line, sizeof line, MSG_DONTWAIT) != LINE) die("send");
    }
    getrusage(RUSAGE_THREAD, &after);
    pthread_join(reader, NULL);
    double sends = (double)members * cycles;
    double user = (micros(after.ru_utime) - micros(before.ru_utime)) / sends;
    double system = (micros(after.ru_stime) - micros(before.ru_stime)) / sends;
    printf("{\"floor\": \"send\", \"members\": %d, \"cycles\": %d, \"cpu_us_per_send\": %.2f, "
           "\"user_us\": %.2f, \"system_us\": %.2f}\n",
           members, cycles, user + system, user, system);
    return 0;
}
