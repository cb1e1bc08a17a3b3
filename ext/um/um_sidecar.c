// Sidecar mode (UM.new(sidecar: true)): a native thread, not a Ruby one,
// waits in the kernel for the ring's completions, and tells the machine's
// thread with a futex, which that thread waits on with the GVL released.
//
// The handshake is one futex word, state:
//   UM_SIDECAR_WATCHING  the sidecar waits for the CQ to hold a completion
//   UM_SIDECAR_SIGNALLED it saw one and waits for the machine to take it
//   UM_SIDECAR_STOPPING  set by stopping: a futex wait for SIGNALLED that the
//                        sidecar is about to start then fails at once (a
//                        wake alone could come before the wait and be lost)
// The sidecar waits with poll(2) on the ring fd (readable while the CQ is not
// empty) and on an eventfd of its own that only stopping writes to, so it can
// be stopped at once from any thread, from the GC and after fork. Once it has
// signalled, it waits on the futex until the machine has processed the CQ
// (else poll would answer at once again and it would spin).
#include "um.h"
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <ruby/thread.h>

#define UM_SIDECAR_WATCHING 0
#define UM_SIDECAR_SIGNALLED 1
#define UM_SIDECAR_STOPPING 2
#define UM_SIDECAR_STACK_SIZE (256 * 1024)
#define UM_SIDECAR_THREAD_NAME "um-sidecar"

struct um_sidecar {
  pthread_t thread;
  _Atomic uint32_t state;  // the futex word
  atomic_bool stop;
  int ring_fd;
  int stop_fd;             // eventfd written once to stop the thread
  unsigned fork_generation; // the thread exists only in this generation
};

static long um_futex(_Atomic uint32_t *word, int op, uint32_t value) {
  return syscall(SYS_futex, (uint32_t *)word, op | FUTEX_PRIVATE_FLAG, value, NULL, NULL, 0);
}

static void *um_sidecar_main(void *arg) {
  struct um_sidecar *sc = arg;
  struct pollfd fds[2] = {
    { .fd = sc->ring_fd, .events = POLLIN },
    { .fd = sc->stop_fd, .events = POLLIN },
  };
  while (!atomic_load(&sc->stop)) {
    int ret = poll(fds, 2, -1);
    if (ret < 0) {
      if (errno == EINTR) continue;
      break; // cannot happen with valid fds; the machine would hang: keep it simple and stop
    }
    if (atomic_load(&sc->stop) || (fds[1].revents & POLLIN)) break;
    if (!(fds[0].revents & POLLIN)) continue;

    atomic_store(&sc->state, UM_SIDECAR_SIGNALLED);
    um_futex(&sc->state, FUTEX_WAKE, 1);
    while (atomic_load(&sc->state) == UM_SIDECAR_SIGNALLED && !atomic_load(&sc->stop))
      um_futex(&sc->state, FUTEX_WAIT, UM_SIDECAR_SIGNALLED);
  }
  return NULL;
}

void um_sidecar_start(struct um *m) {
  struct um_sidecar *sc = calloc(1, sizeof(struct um_sidecar));
  if (!sc) {
    um_ring_teardown(m);
    rb_raise(rb_eNoMemError, "failed to allocate the sidecar");
  }
  sc->ring_fd = m->ring.ring_fd;
  sc->fork_generation = um_fork_generation;
  sc->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sc->stop_fd < 0) {
    int err = errno;
    free(sc);
    um_ring_teardown(m);
    rb_syserr_fail(err, "eventfd");
  }

  // The thread takes no signal: Ruby's handlers expect Ruby threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, UM_SIDECAR_STACK_SIZE);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&sc->thread, &attr, um_sidecar_main, sc);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err) {
    close(sc->stop_fd);
    free(sc);
    um_ring_teardown(m);
    rb_syserr_fail(err, "pthread_create (sidecar)");
  }
  // Named so it can be told apart in ps, top and /proc/PID/task/*/comm.
  pthread_setname_np(sc->thread, UM_SIDECAR_THREAD_NAME);
  m->sidecar = sc;
}

// Stops and joins the thread (it answers at once), closes its eventfd. In a
// forked child the thread does not exist: only the fd copy is closed. Safe
// in dfree: touches no Ruby object.
void um_sidecar_stop(struct um *m) {
  struct um_sidecar *sc = m->sidecar;
  if (!sc) return;
  m->sidecar = NULL;

  if (sc->fork_generation == um_fork_generation) {
    atomic_store(&sc->stop, true);
    atomic_store(&sc->state, UM_SIDECAR_STOPPING);
    uint64_t one = 1;
    ssize_t ret;
    do ret = write(sc->stop_fd, &one, sizeof(one));
    while (ret < 0 && errno == EINTR);
    um_futex(&sc->state, FUTEX_WAKE, INT32_MAX);
    pthread_join(sc->thread, NULL);
  }
  close(sc->stop_fd);
  free(sc);
}

bool um_sidecar_fd_p(struct um *m, int fd) {
  return m->sidecar && fd == m->sidecar->stop_fd;
}

static void *um_sidecar_wait_without_gvl(void *arg) {
  struct um *m = arg;
  struct um_sidecar *sc = m->sidecar;
  // One wait: a signal (Ruby's interrupt) ends it, and the caller loops.
  if (atomic_load(&sc->state) == UM_SIDECAR_WATCHING && !io_uring_cq_ready(&m->ring))
    um_futex(&sc->state, FUTEX_WAIT, UM_SIDECAR_WATCHING);
  return NULL;
}

// Waits (GVL released) until the sidecar signals completions or the thread
// is interrupted.
void um_sidecar_wait(struct um *m) {
  rb_thread_call_without_gvl(um_sidecar_wait_without_gvl, m, RUBY_UBF_IO, NULL);
}

// The machine processed the CQ: the sidecar may watch again.
void um_sidecar_taken(struct um *m) {
  struct um_sidecar *sc = m->sidecar;
  if (!sc) return;
  uint32_t expected = UM_SIDECAR_SIGNALLED;
  if (atomic_compare_exchange_strong(&sc->state, &expected, UM_SIDECAR_WATCHING))
    um_futex(&sc->state, FUTEX_WAKE, 1);
}
