// TLS record I/O on the ring (um_ssl.c).
#ifndef UM_SSL_H
#define UM_SSL_H

#include "um.h"
#include <openssl/ssl.h>

// What the BIO of one SSL socket needs: the machine and the fd, and what
// interrupted its last operation. Held by the socket (a hidden ivar).
struct um_ssl_link {
  VALUE self;
  VALUE machine;
  VALUE pending;      // an exception or wake value caught in a BIO callback
  int pending_state;  // rb_protect's state for it (0: a plain wake value)
  bool has_pending;
  bool nonblock;      // a *_nonblock method is running: EAGAIN goes back to OpenSSL
  int fd;
};

SSL *um_ssl_get(VALUE sock);
SSL *um_ssl_set_bio(VALUE machine, VALUE sock);
VALUE um_ssl_take_pending(VALUE sock, bool *found, int *state);
VALUE um_ssl_read(VALUE machine, VALUE sock, VALUE buffer, size_t maxlen);
VALUE um_ssl_read_raw(VALUE machine, VALUE sock, void *ptr, size_t len);
VALUE um_ssl_write(VALUE machine, VALUE sock, VALUE buffer, ssize_t len);
void um_ssl_set_nonblock(VALUE sock, bool on);
void Init_um_ssl(void);

#endif
