/*
 * fs-probe: one filesystem operation, timed, for the stopped-store scenario (e2e/scenarios/stopped-store.test.ts).
 *
 *   fs-probe OP PATH
 *
 * Prepares what OP needs while the store still answers (opens the file, writes what fsync and close will publish),
 * prints "ready", waits for a line on stdin, prints "started", then runs OP once and prints
 * "done ERRNO-NAME MILLISECONDS" (OK when it succeeded). SIGUSR1 has a handler installed without SA_RESTART, so a
 * signal to the probe ends a FUSE request's wait with EINTR when the filesystem answers so.
 *
 * OP: lookup (stat of PATH, a name never looked up), getattr (stat of an open PATH through /proc/self/fd, which
 * skips the lookup), readdir (getdents64 of an open directory), open (a read-only open of PATH while this probe
 * writes it through another descriptor: granary makes that writer durable first, close-to-open), read (1 MiB pread
 * with O_DIRECT), write (1 MiB writes until one fails, at most 1 GiB), fsync, close (after a 1 MiB write each).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static void on_signal(int signo) { (void)signo; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void fail(const char *what) {
  fprintf(stdout, "error %s %s\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  fflush(stdout);
  exit(2);
}

static void wait_for_go(void) {
  char line[16];
  printf("ready\n");
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) exit(3);
  printf("started\n");
  fflush(stdout);
}

static void report(int result, double started) {
  double elapsed = now_ms() - started;
  const char *name = result < 0 ? strerrorname_np(errno) : "OK";
  printf("done %s %.0f\n", name ? name : "?", elapsed);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fs-probe lookup|revalidate|getattr|readdir|open|read|write|fsync|close PATH\n");
    return 64;
  }
  const char *op = argv[1], *path = argv[2];
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal; /* no SA_RESTART: an interrupted call returns EINTR */
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, NULL);

  static char buffer[MiB] __attribute__((aligned(4096)));
  memset(buffer, 'g', sizeof buffer);
  char proc_path[64];
  struct stat st;
  int fd = -1, result;
  double started;

  if (strcmp(op, "lookup") == 0) {
    wait_for_go();
    started = now_ms();
    result = stat(path, &st);
  } else if (strcmp(op, "revalidate") == 0) {
    /* The name is looked up now; by the go its entry has expired, so the kernel revalidates it with a LOOKUP. */
    if (stat(path, &st) != 0) fail("stat");
    wait_for_go();
    started = now_ms();
    result = stat(path, &st);
  } else if (strcmp(op, "getattr") == 0) {
    if ((fd = open(path, O_RDONLY)) < 0) fail("open");
    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
    wait_for_go();
    started = now_ms();
    result = stat(proc_path, &st);
  } else if (strcmp(op, "open") == 0) {
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) fail("open");
    if (write(fd, buffer, MiB) != MiB) fail("write");
    wait_for_go();
    started = now_ms();
    result = open(path, O_RDONLY);
  } else if (strcmp(op, "readdir") == 0) {
    if ((fd = open(path, O_RDONLY | O_DIRECTORY)) < 0) fail("opendir");
    wait_for_go();
    started = now_ms();
    result = (int)syscall(SYS_getdents64, fd, buffer, sizeof buffer);
  } else if (strcmp(op, "read") == 0) {
    if ((fd = open(path, O_RDONLY | O_DIRECT)) < 0) fail("open");
    wait_for_go();
    started = now_ms();
    result = (int)pread(fd, buffer, MiB, 0);
  } else if (strcmp(op, "write") == 0) {
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) fail("open");
    wait_for_go();
    /* The writes that go into memory are quick; the one that waits for the stopped store is timed. */
    result = 0;
    started = now_ms();
    for (int i = 0; i < 1024 && result >= 0; i++) {
      started = now_ms();
      result = (int)write(fd, buffer, MiB);
    }
  } else if (strcmp(op, "fsync") == 0 || strcmp(op, "close") == 0) {
    if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) fail("open");
    if (write(fd, buffer, MiB) != MiB) fail("write");
    wait_for_go();
    started = now_ms();
    result = op[0] == 'f' ? fsync(fd) : close(fd);
  } else {
    fprintf(stderr, "fs-probe: unknown operation %s\n", op);
    return 64;
  }
  report(result, started);
  /* Stay until told to go: the test decides when the descriptors close (after the store runs again). */
  char line[16];
  if (fgets(line, sizeof line, stdin)) return 0;
  return 0;
}
