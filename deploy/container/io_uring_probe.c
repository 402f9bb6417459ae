// Tells whether this process may use io_uring: calls io_uring_setup once and prints the result.
// Used where Weft itself is not at hand: the seccomp tests, to see a profile's effect.
// Exit status: 0 available, 1 refused (the message names the errno), 2 usage.
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: io_uring_probe\n");
        return 2;
    }
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    long fd = syscall(__NR_io_uring_setup, 4, &params);
    if (fd < 0) {
        int e = errno;
        printf("io_uring refused: io_uring_setup failed: %s (errno %d)\n", strerror(e), e);
        return 1;
    }
    close((int)fd);
    printf("io_uring available\n");
    return 0;
}
