/* The pod sandbox's pause process: holds the pod's namespaces, reaps orphans (it is PID 1 of the
 * pod when the pod shares its PID namespace) and exits on SIGINT/SIGTERM, as Kubernetes' own
 * build/pause/linux/pause.c does. Built with gcc -static into a one-file image. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int signal) { _exit(signal == SIGINT || signal == SIGTERM ? 0 : 1); }

static void on_child(int signal) {
  (void)signal;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    return 1;
  }
  for (;;) pause();
}
