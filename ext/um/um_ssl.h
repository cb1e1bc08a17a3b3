// TLS record I/O on the ring (um_ssl.c).
#ifndef UM_SSL_H
#define UM_SSL_H

#include "um.h"
#include <openssl/ssl.h>

// Bytes the BIO moves per recv or send at most: a whole TLS record (16 KiB
// of data, its header and up to 256 bytes of expansion). OpenSSL takes a
// shorter recv or send as it takes one from a socket.
#define UM_SSL_BIO_CHUNK (17 * 1024)

// A lock among the fibers of a machine, held across no kernel wait that
// another fiber's progress could depend on.
struct um_ssl_lock {
  VALUE owner;            // a fiber, or Qnil
  struct um_op **waiters; // OP_SCHEDULE records of waiting fibers, first come first
  unsigned count, cap;
};

// What the BIO of one SSL socket needs: the machine and the fd, what
// interrupted its last operation, the lock that keeps a second fiber out of
// OpenSSL while one is inside, and the memory the kernel reads and writes
// (never OpenSSL's own buffers, which it may free). Held by the socket (a
// hidden ivar); an op in the kernel holds it too, until its CQE.
struct um_ssl_link {
  VALUE self;
  VALUE machine;
  VALUE pending;      // an exception or wake value caught in a BIO callback
  int pending_state;  // rb_protect's state for it (0: a plain wake value)
  bool has_pending;
  int fd;
  struct um_ssl_lock calls;  // one fiber at a time inside OpenSSL
  struct um_ssl_lock writes; // one writer at a time from SSL_write to its last retry
  struct um_ssl_lock reads;  // one fiber at a time waits for data (um_ssl_fill)
  char *rbuf;         // recv lands here, then is copied into OpenSSL's buffer
  char *wbuf;         // send reads from a copy here
  // What a recv that waited (outside OpenSSL) brought, in rbuf: served to
  // OpenSSL before anything else.
  size_t stash_off, stash_len;
  bool stash_eof;     // that recv returned 0
  int stash_errno;    // it failed with this
  bool filling;       // that recv is in the kernel: the BIO must not recv
  bool defer_reads;   // a blocking call: the BIO's recv waits outside OpenSSL
};

// um_ssl_lock.c
VALUE um_ssl_lock_take(struct um *m, struct um_ssl_lock *lock, VALUE holder, const char *what);
void um_ssl_lock_give(struct um *m, struct um_ssl_lock *lock);
void um_ssl_lock_free(struct um_ssl_lock *lock);

SSL *um_ssl_get(VALUE sock);
SSL *um_ssl_set_bio(VALUE machine, VALUE sock);
VALUE um_ssl_take_pending(VALUE sock, bool *found, int *state);
VALUE um_ssl_read(VALUE machine, VALUE sock, VALUE buffer, size_t maxlen);
VALUE um_ssl_read_raw(VALUE machine, VALUE sock, void *ptr, size_t len);
VALUE um_ssl_write(VALUE machine, VALUE sock, VALUE buffer, ssize_t len);
VALUE um_ssl_shutdown(VALUE sock);
VALUE um_ssl_wait(VALUE sock, bool writable);
VALUE um_ssl_locked(VALUE sock, bool writes, VALUE (*fn)(VALUE), VALUE arg);
VALUE um_ssl_call(VALUE sock, bool blocking, VALUE (*fn)(VALUE), VALUE arg);
void Init_um_ssl(void);

#endif
