// TLS over the ring: an OpenSSL BIO whose reads and writes are machine
// operations (recv and send on the socket's fd), installed on the SSL object
// of an OpenSSL::SSL::SSLSocket. OpenSSL calls the BIO from inside SSL_read,
// SSL_write, SSL_connect... and the BIO suspends the calling fiber.
//
// Nothing may unwind through OpenSSL's frames: an exception that interrupts
// a BIO operation (a timeout, #schedule with an exception) is caught, the
// BIO fails with EINTR, and the exception is kept on the link until the
// caller of OpenSSL raises it (um_ssl_raise_pending).
#include "um.h"
#include "um_ssl.h"
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <openssl/err.h>
#include <ruby/io.h>
#include <poll.h>

static ID id_link;
static ID id_to_io;
static BIO_METHOD *um_bio_method;
static int um_bio_type;

static void link_mark(void *ptr) {
  struct um_ssl_link *link = ptr;
  rb_gc_mark_movable(link->machine);
  rb_gc_mark_movable(link->pending);
  rb_gc_mark_movable(link->calls.owner);
  rb_gc_mark_movable(link->writes.owner);
  rb_gc_mark_movable(link->reads.owner);
}

static void link_compact(void *ptr) {
  struct um_ssl_link *link = ptr;
  link->self = rb_gc_location(link->self);
  link->machine = rb_gc_location(link->machine);
  link->pending = rb_gc_location(link->pending);
  link->calls.owner = rb_gc_location(link->calls.owner);
  link->writes.owner = rb_gc_location(link->writes.owner);
  link->reads.owner = rb_gc_location(link->reads.owner);
}

// The BIO never touches the link once the SSL object frees it, and the SSL
// object may be freed after the link (both die with the socket). An op in
// the kernel keeps the link alive (op->extra), so rbuf and wbuf outlive it.
static void link_free(void *ptr) {
  struct um_ssl_link *link = ptr;
  um_ssl_lock_free(&link->calls);
  um_ssl_lock_free(&link->writes);
  um_ssl_lock_free(&link->reads);
  ruby_xfree(link->rbuf);
  ruby_xfree(link->wbuf);
  ruby_xfree(ptr);
}

static size_t link_size(const void *ptr) {
  const struct um_ssl_link *link = ptr;
  return sizeof(struct um_ssl_link) + 2 * UM_SSL_BIO_CHUNK +
    (link->calls.cap + link->writes.cap + link->reads.cap) * sizeof(struct um_op *);
}

static const rb_data_type_t um_ssl_link_type = {
  .wrap_struct_name = "UringMachine::SSLLink",
  .function = { .dmark = link_mark, .dfree = link_free, .dsize = link_size, .dcompact = link_compact },
  .flags = RUBY_TYPED_FREE_IMMEDIATELY | RUBY_TYPED_WB_PROTECTED,
};

// BIO callbacks
//
// OpenSSL runs them with the socket's lock held (one fiber inside OpenSSL
// per socket), so each makes one attempt that does not wait (MSG_DONTWAIT):
// EAGAIN goes back to OpenSSL as a retry, and the caller waits for the fd
// outside OpenSSL, without the lock, as a core SSLSocket waits outside
// OpenSSL on a non-blocking socket. A reader waiting for a record thus never
// holds up a writer, nor the other way round. The kernel reads and writes
// only the link's own memory: OpenSSL's buffers are copied to and from it,
// while the BIO call runs.

struct um_bio_call {
  struct um_ssl_link *link;
  enum um_op_kind kind;
  size_t len;
  int32_t res;
  VALUE woken;
};

static VALUE um_bio_transfer(VALUE arg) {
  struct um_bio_call *call = (struct um_bio_call *)arg;
  struct um_ssl_link *link = call->link;
  struct um *m = um_get_machine(link->machine);
  // OP_F_CALLER_MEM: a fiber woken early waits for the kernel to let go of
  // rbuf/wbuf; the record also keeps the link alive until its CQE.
  struct um_op *op = um_op_new(m, call->kind, OP_F_CALLER_MEM);
  RB_OBJ_WRITE(m->self, &op->extra, link->self);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  if (call->kind == OP_RECV)
    io_uring_prep_recv(sqe, link->fd, link->rbuf, call->len, MSG_DONTWAIT);
  else
    io_uring_prep_send(sqe, link->fd, link->wbuf, call->len, MSG_DONTWAIT | MSG_NOSIGNAL);
  call->woken = um_op_await(m, op, &call->res);
  return Qnil;
}

static void um_link_keep_pending(struct um_ssl_link *link, VALUE value, int state) {
  RB_OBJ_WRITE(link->self, &link->pending, value);
  link->pending_state = state;
  link->has_pending = true;
}

// What a recv that waited outside OpenSSL brought comes first, in order;
// while such a recv is in the kernel, or in a blocking call (which waits
// for data outside OpenSSL, with one recv), the BIO asks OpenSSL to retry.
// INT_MIN: the BIO is to try a recv itself.
static int um_bio_read_stash(BIO *bio, struct um_ssl_link *link, char *ptr, int len) {
  if (link->stash_len) {
    size_t n = (size_t)len < link->stash_len ? (size_t)len : link->stash_len;
    memcpy(ptr, link->rbuf + link->stash_off, n);
    link->stash_off += n;
    link->stash_len -= n;
    return (int)n;
  }
  if (link->stash_eof) {
    link->stash_eof = false;
    return 0;
  }
  if (link->stash_errno) {
    errno = link->stash_errno;
    link->stash_errno = 0;
    return -1;
  }
  if (link->filling || link->defer_reads) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return INT_MIN;
}

static int um_bio_io(BIO *bio, enum um_op_kind kind, char *ptr, int len) {
  struct um_ssl_link *link = BIO_get_data(bio);
  BIO_clear_retry_flags(bio);
  if (!link) {
    errno = EBADF;
    return -1;
  }
  if (len <= 0) return 0;
  if (kind == OP_RECV) {
    int served = um_bio_read_stash(bio, link, ptr, len);
    if (served != INT_MIN) return served;
  }

  size_t count = (size_t)len > UM_SSL_BIO_CHUNK ? UM_SSL_BIO_CHUNK : (size_t)len;
  if (kind == OP_SEND) memcpy(link->wbuf, ptr, count);
  struct um_bio_call call = { .link = link, .kind = kind, .len = count, .woken = Qundef };
  int state = 0;
  rb_protect(um_bio_transfer, (VALUE)&call, &state);
  if (state) {
    VALUE errinfo = um_errinfo_take();
    um_link_keep_pending(link, errinfo, state);
    errno = EINTR;
    return -1;
  }
  if (call.woken != Qundef) {
    um_link_keep_pending(link, call.woken, 0);
    errno = EINTR;
    return -1;
  }
  if (call.res == -EAGAIN) {
    // OpenSSL answers SSL_ERROR_WANT_READ/WRITE: the caller waits for the
    // fd (or, in a *_nonblock method, reports IO::WaitReadable/WaitWritable).
    if (kind == OP_RECV) BIO_set_retry_read(bio);
    else BIO_set_retry_write(bio);
    return -1;
  }
  if (call.res < 0) {
    errno = -call.res;
    return -1;
  }
  // The kernel is done with rbuf, and OpenSSL's buffer is valid: this fiber
  // holds the lock, so no other OpenSSL call on the socket ran meanwhile.
  if (kind == OP_RECV && call.res > 0) memcpy(ptr, link->rbuf, (size_t)call.res);
  return call.res;
}

static int um_bio_read(BIO *bio, char *buf, int len) {
  return um_bio_io(bio, OP_RECV, buf, len);
}

static int um_bio_write(BIO *bio, const char *buf, int len) {
  return um_bio_io(bio, OP_SEND, (char *)buf, len);
}

static int um_bio_puts(BIO *bio, const char *str) {
  return um_bio_write(bio, str, (int)strlen(str));
}

static long um_bio_ctrl(BIO *bio, int cmd, long num, void *ptr) {
  // Writes go straight to the kernel: there is nothing to flush.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int um_bio_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static int um_bio_destroy(BIO *bio) {
  BIO_set_data(bio, NULL);
  BIO_set_init(bio, 0);
  return 1;
}

static BIO_METHOD *um_bio_method_get(void) {
  if (um_bio_method) return um_bio_method;

  int index = BIO_get_new_index();
  BIO_METHOD *method = index < 0 ? NULL : BIO_meth_new(index | BIO_TYPE_SOURCE_SINK, "UringMachine");
  if (!method) rb_raise(eUMError, "cannot create the OpenSSL BIO method");
  BIO_meth_set_read(method, um_bio_read);
  BIO_meth_set_write(method, um_bio_write);
  BIO_meth_set_puts(method, um_bio_puts);
  BIO_meth_set_ctrl(method, um_bio_ctrl);
  BIO_meth_set_create(method, um_bio_create);
  BIO_meth_set_destroy(method, um_bio_destroy);
  um_bio_type = index | BIO_TYPE_SOURCE_SINK;
  um_bio_method = method;
  return method;
}

// The socket and its SSL object

// OpenSSL::SSL::SSLSocket, once the openssl library is loaded (Qnil before).
static VALUE cSSLSocket = Qnil;

static VALUE um_ssl_socket_class(void) {
  if (!NIL_P(cSSLSocket)) return cSSLSocket;
  if (!rb_const_defined(rb_cObject, rb_intern("OpenSSL"))) return Qnil;
  VALUE mOpenSSL = rb_const_get(rb_cObject, rb_intern("OpenSSL"));
  if (!rb_const_defined(mOpenSSL, rb_intern("SSL"))) return Qnil;
  VALUE mSSL = rb_const_get(mOpenSSL, rb_intern("SSL"));
  if (!rb_const_defined(mSSL, rb_intern("SSLSocket"))) return Qnil;
  cSSLSocket = rb_const_get(mSSL, rb_intern("SSLSocket"));
  return cSSLSocket;
}

SSL *um_ssl_get(VALUE sock) {
  VALUE klass = um_ssl_socket_class();
  if (NIL_P(klass) || !rb_obj_is_kind_of(sock, klass))
    rb_raise(rb_eTypeError, "expected an OpenSSL::SSL::SSLSocket, not %s", rb_obj_classname(sock));
  // The openssl extension keeps the SSL object in a TypedData of this name.
  if (!RTYPEDDATA_P(sock) || strcmp(RTYPEDDATA_TYPE(sock)->wrap_struct_name, "OpenSSL/SSL") != 0)
    rb_raise(rb_eTypeError, "%s holds no OpenSSL SSL object", rb_obj_classname(sock));
  SSL *ssl = RTYPEDDATA_DATA(sock);
  if (!ssl) rb_raise(eUMError, "the SSL socket is not initialized");
  return ssl;
}

static struct um_ssl_link *um_ssl_link_of(VALUE sock) {
  VALUE holder = rb_attr_get(sock, id_link);
  return NIL_P(holder) ? NULL : RTYPEDDATA_DATA(holder);
}

static int um_ssl_socket_fd(VALUE sock) {
  VALUE io = rb_funcall(sock, id_to_io, 0);
  return rb_io_descriptor(io);
}

// The BIO never waits for the socket: the socket's stock methods must wait
// on the machine (UringMachine::SSLSocketOnRing, lib/uringmachine/ssl.rb),
// however the BIO got there (#ssl_set_bio, #ssl_read, UM::IO...).
static void um_ssl_extend(VALUE sock) {
  VALUE mod = rb_const_get(cUM, rb_intern("SSLSocketOnRing"));
  if (!rb_obj_is_kind_of(sock, mod)) rb_extend_object(sock, mod);
}

SSL *um_ssl_set_bio(VALUE machine, VALUE sock) {
  SSL *ssl = um_ssl_get(sock);
  struct um_ssl_link *link = um_ssl_link_of(sock);
  BIO *rbio = SSL_get_rbio(ssl);
  if (link && rbio && um_bio_method && BIO_method_type(rbio) == um_bio_type && BIO_get_data(rbio) == link) {
    RB_OBJ_WRITE(link->self, &link->machine, machine);
    return ssl;
  }

  int fd = um_ssl_socket_fd(sock);
  VALUE holder = TypedData_Make_Struct(rb_cObject, struct um_ssl_link, &um_ssl_link_type, link);
  link->self = holder;
  RB_OBJ_WRITE(holder, &link->machine, machine);
  link->pending = Qnil;
  link->calls.owner = link->writes.owner = link->reads.owner = Qnil;
  link->fd = fd;
  // ruby_xmalloc: the GC counts them, and collects the sockets they belong
  // to accordingly.
  link->rbuf = ruby_xmalloc(UM_SSL_BIO_CHUNK);
  link->wbuf = ruby_xmalloc(UM_SSL_BIO_CHUNK);

  BIO *bio = BIO_new(um_bio_method_get());
  if (!bio) rb_raise(eUMError, "cannot create an OpenSSL BIO");
  rb_ivar_set(sock, id_link, holder);
  BIO_set_data(bio, link);
  // One reference for both directions.
  SSL_set_bio(ssl, bio, bio);
  um_ssl_extend(sock);
  return ssl;
}

// What interrupted the socket's last BIO operation (Qnil when nothing did),
// taken from the link; *state is its rb_protect state (0: a plain value).
VALUE um_ssl_take_pending(VALUE sock, bool *found, int *state) {
  struct um_ssl_link *link = um_ssl_link_of(sock);
  *found = link && link->has_pending;
  *state = 0;
  if (!*found) return Qnil;

  VALUE value = link->pending;
  *state = link->pending_state;
  link->has_pending = false;
  RB_OBJ_WRITE(link->self, &link->pending, Qnil);
  return value;
}

// Raises what interrupted a BIO operation, or returns a plain wake value.
static VALUE um_ssl_raise_pending(VALUE value, int state) {
  if (state) {
    if (rb_obj_is_kind_of(value, rb_eException)) rb_exc_raise(value);
    rb_jump_tag(state);
  }
  return um_raise_if_exception(value);
}

// Raises the OpenSSL error queue's first error as OpenSSL::SSL::SSLError.
static void um_ssl_raise_error(const char *func) {
  char message[256] = "unknown error";
  unsigned long err = ERR_get_error();
  if (err) ERR_error_string_n(err, message, sizeof(message));
  ERR_clear_error();
  VALUE klass = rb_path2class("OpenSSL::SSL::SSLError");
  rb_raise(klass, "%s: %s", func, message);
}

// After a failed SSL call: the exception or value that interrupted a BIO
// operation, else the OpenSSL or system error. Returns (for a clean or
// abrupt EOF) or raises.
static VALUE um_ssl_fail(VALUE sock, int ret, int err, int saved_errno, const char *func) {
  bool found;
  int state;
  VALUE pending = um_ssl_take_pending(sock, &found, &state);
  if (found) {
    ERR_clear_error();
    return um_ssl_raise_pending(pending, state);
  }
  switch (err) {
    case SSL_ERROR_ZERO_RETURN:
      return INT2FIX(0);
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error()) break;
      // The peer closed the connection without a close_notify.
      if (ret == 0 || saved_errno == 0) return INT2FIX(0);
      rb_syserr_fail(saved_errno, func);
  }
  um_ssl_raise_error(func);
  return Qnil;
}

// The link of a socket on the ring (ssl_set_bio installs it).
static struct um_ssl_link *um_ssl_link_get(VALUE sock) {
  struct um_ssl_link *link = um_ssl_link_of(sock);
  if (!link) rb_raise(eUMError, "the SSL socket is not on a machine (call #ssl_set_bio)");
  return link;
}

static VALUE um_ssl_fill_body(VALUE arg) {
  struct um_ssl_link *link = (struct um_ssl_link *)arg;
  // Another reader filled it meanwhile: nothing to wait for.
  if (link->stash_len || link->stash_eof || link->stash_errno) return Qundef;

  struct um *m = um_get_machine(link->machine);
  // As in um_bio_transfer: the kernel writes rbuf, which the record keeps
  // alive until its CQE, and a fiber woken early waits for that CQE.
  struct um_op *op = um_op_new(m, OP_RECV, OP_F_CALLER_MEM);
  RB_OBJ_WRITE(m->self, &op->extra, link->self);
  io_uring_prep_recv(um_get_sqe(m, op), link->fd, link->rbuf, UM_SSL_BIO_CHUNK, 0);
  link->filling = true;
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  // Bytes that arrived are kept even when a wake came with them (the engine
  // delivers that wake later): the TLS stream must not lose them.
  if (res > 0) {
    link->stash_off = 0;
    link->stash_len = (size_t)res;
  }
  else if (res == 0)
    link->stash_eof = true;
  else if (res == -EAGAIN)
    // A kernel that answers EAGAIN for an O_NONBLOCK socket rather than
    // waiting: wait for data, then the caller tries again.
    return um_wait_ready(m, link->fd, POLLIN);
  else if (res != -EINTR)
    link->stash_errno = -res;
  return Qundef;
}

struct um_ssl_fill_arg {
  struct um *m;
  struct um_ssl_link *link;
};

static VALUE um_ssl_fill_ensure(VALUE arg) {
  struct um_ssl_fill_arg *f = (struct um_ssl_fill_arg *)arg;
  f->link->filling = false;
  um_ssl_lock_give(f->m, &f->link->reads);
  return Qnil;
}

// Waits (outside OpenSSL, without the lock on OpenSSL calls) for data on
// the socket, with one recv into rbuf that the BIO then serves to OpenSSL:
// a reader waiting for data never holds up a writer. One fiber at a time;
// the others wait for it. Returns Qundef, or the value a wake gave instead.
static VALUE um_ssl_fill(struct um *m, struct um_ssl_link *link) {
  VALUE v = um_ssl_lock_take(m, &link->reads, link->self, "waiting for data");
  if (v != Qundef) return v;
  struct um_ssl_fill_arg f = { .m = m, .link = link };
  return rb_ensure(um_ssl_fill_body, (VALUE)link, um_ssl_fill_ensure, (VALUE)&f);
}

// One step of OpenSSL work on the socket (SSL_read, SSL_write...): its
// return value, as OpenSSL's functions return.
typedef int (*um_ssl_step)(SSL *ssl, void *arg);

// Runs step with the socket's lock held until it succeeds (> 0: returned
// as an Integer) or fails for good (what um_ssl_fail makes of it: 0 at EOF,
// a wake value, or it raises). When OpenSSL wants the fd to be readable or
// writable, the fiber waits for that outside OpenSSL and without the lock.
static VALUE um_ssl_run(VALUE sock, SSL *ssl, um_ssl_step step, void *arg, const char *func) {
  struct um_ssl_link *link = um_ssl_link_get(sock);
  struct um *m = um_get_machine(link->machine);
  while (true) {
    VALUE v = um_ssl_lock_take(m, &link->calls, link->self, "inside OpenSSL");
    if (v != Qundef) return v;
    ERR_clear_error();
    link->defer_reads = true;
    int ret = step(ssl, arg);
    link->defer_reads = false;
    int err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, ret);
    int saved_errno = errno;
    um_ssl_lock_give(m, &link->calls);
    if (ret > 0) return INT2NUM(ret);

    if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && !link->has_pending) {
      ERR_clear_error();
      v = err == SSL_ERROR_WANT_READ ? um_ssl_fill(m, link) : um_wait_ready(m, link->fd, POLLOUT);
      if (v != Qundef) return v;
      continue;
    }
    return um_ssl_fail(sock, ret, err, saved_errno, func);
  }
}

struct um_ssl_io_arg {
  SSL *ssl;
  VALUE sock;
  char *ptr;
  int len;
  VALUE buffer;
};

static int um_ssl_read_step(SSL *ssl, void *arg) {
  struct um_ssl_io_arg *a = arg;
  return SSL_read(ssl, a->ptr, a->len);
}

static int um_ssl_write_step(SSL *ssl, void *arg) {
  struct um_ssl_io_arg *a = arg;
  return SSL_write(ssl, a->ptr, a->len);
}

static VALUE um_ssl_read_body(VALUE arg) {
  struct um_ssl_io_arg *a = (struct um_ssl_io_arg *)arg;
  return um_ssl_run(a->sock, a->ssl, um_ssl_read_step, a, "SSL_read");
}

static VALUE um_ssl_buffer_unlock(VALUE buffer) {
  um_buffer_unlock(buffer);
  return Qnil;
}

// SSL_read into memory the caller keeps (OpenSSL copies into it, never the
// kernel): the count (> 0), or what um_ssl_fail makes of a failure (0 at
// EOF, a wake value) when it does not raise. +buffer+ (or Qnil) is the
// object that memory belongs to: locked meanwhile, so that it stays put
// while the fiber waits between attempts.
static VALUE um_ssl_read_once(SSL *ssl, VALUE sock, void *ptr, size_t len, VALUE buffer) {
  if (len > INT_MAX) len = INT_MAX;
  struct um_ssl_io_arg a = { .ssl = ssl, .sock = sock, .ptr = ptr, .len = (int)len, .buffer = buffer };
  if (!NIL_P(buffer) && um_buffer_lock(buffer))
    return rb_ensure(um_ssl_read_body, (VALUE)&a, um_ssl_buffer_unlock, buffer);
  return um_ssl_read_body((VALUE)&a);
}

VALUE um_ssl_read_raw(VALUE machine, VALUE sock, void *ptr, size_t len) {
  return um_ssl_read_once(um_ssl_set_bio(machine, sock), sock, ptr, len, Qnil);
}

// One ssl_read hands out what OpenSSL has decrypted: a record or a few, of
// 16 KiB each. The buffer is grown for at most this much, not for maxlen: a
// huge maxlen grew (and zeroed) a 2 GiB IO::Buffer first, seconds per call.
#define UM_SSL_READ_MAX (1 << 20)

VALUE um_ssl_read(VALUE machine, VALUE sock, VALUE buffer, size_t maxlen) {
  SSL *ssl = um_ssl_set_bio(machine, sock);
  if (maxlen > UM_SSL_READ_MAX) maxlen = UM_SSL_READ_MAX;
  ssize_t offset = 0;
  void *ptr = um_buffer_for_read(buffer, &maxlen, &offset);
  VALUE ret = um_ssl_read_once(ssl, sock, ptr, maxlen, buffer);
  um_buffer_after_read(buffer, offset, FIXNUM_P(ret) ? FIX2LONG(ret) : 0);
  return ret;
}

struct um_ssl_write_arg {
  SSL *ssl;
  VALUE sock;
  const char *ptr;
  size_t len;
};

// Writes all of it, chunk after chunk. A chunk OpenSSL could not finish is
// retried as it was (SSL_write's rule), by this fiber: the socket's write
// lock keeps other writers out until then.
static VALUE um_ssl_write_body(VALUE arg) {
  struct um_ssl_write_arg *w = (struct um_ssl_write_arg *)arg;
  size_t total = 0;
  while (total < w->len) {
    size_t left = w->len - total;
    struct um_ssl_io_arg a = { .ssl = w->ssl, .sock = w->sock, .ptr = (char *)w->ptr + total,
      .len = left > INT_MAX ? INT_MAX : (int)left, .buffer = Qnil };
    VALUE v = um_ssl_run(w->sock, w->ssl, um_ssl_write_step, &a, "SSL_write");
    if (v == INT2FIX(0)) rb_syserr_fail(EPIPE, "SSL_write");
    if (!FIXNUM_P(v) || FIX2LONG(v) < 0) return v;
    total += (size_t)FIX2LONG(v);
  }
  return SIZET2NUM(total);
}

struct um_ssl_locked_arg {
  VALUE (*fn)(VALUE);
  VALUE arg;
  struct um *m;
  struct um_ssl_link *link;
  struct um_ssl_lock *lock;
};

static VALUE um_ssl_locked_body(VALUE arg) {
  struct um_ssl_locked_arg *l = (struct um_ssl_locked_arg *)arg;
  return l->fn(l->arg);
}

static VALUE um_ssl_locked_ensure(VALUE arg) {
  struct um_ssl_locked_arg *l = (struct um_ssl_locked_arg *)arg;
  if (l->lock == &l->link->calls) l->link->defer_reads = false;
  um_ssl_lock_give(l->m, l->lock);
  return Qnil;
}

// Runs fn(arg) holding the socket's lock: the write lock (writes), held
// across waits for the fd, or the lock on OpenSSL calls, for fn that do
// not wait (a *_nonblock method of the socket). Returns what fn returns, or
// the value a wake gave instead of the lock.
VALUE um_ssl_locked(VALUE sock, bool writes, VALUE (*fn)(VALUE), VALUE arg) {
  struct um_ssl_link *link = um_ssl_link_of(sock);
  if (!link) return fn(arg);
  struct um *m = um_get_machine(link->machine);
  struct um_ssl_lock *lock = writes ? &link->writes : &link->calls;
  VALUE v = um_ssl_lock_take(m, lock, link->self, writes ? "writing" : "inside OpenSSL");
  if (v != Qundef) return v;
  struct um_ssl_locked_arg l = { .fn = fn, .arg = arg, .m = m, .link = link, .lock = lock };
  return rb_ensure(um_ssl_locked_body, (VALUE)&l, um_ssl_locked_ensure, (VALUE)&l);
}

static VALUE um_ssl_locked_write(VALUE arg) {
  struct um_ssl_write_arg *w = (struct um_ssl_write_arg *)arg;
  return um_ssl_locked(w->sock, true, um_ssl_write_body, arg);
}

static int um_ssl_shutdown_step(SSL *ssl, void *arg) {
  // 0: close_notify sent; the peer's is not awaited (WANT_READ, when ours
  // went out before), as SSLSocket#sysclose does not await it.
  int ret = SSL_shutdown(ssl);
  if (ret == 0 || (ret < 0 && SSL_get_error(ssl, ret) == SSL_ERROR_WANT_READ)) return 1;
  return ret;
}

static VALUE um_ssl_shutdown_run(VALUE arg) {
  struct um_ssl_io_arg *a = (struct um_ssl_io_arg *)arg;
  return um_ssl_run(a->sock, a->ssl, um_ssl_shutdown_step, a, "SSL_shutdown");
}

struct um_ssl_call_arg {
  struct um_ssl_link *link;
  bool blocking;
  VALUE (*fn)(VALUE);
  VALUE arg;
};

static VALUE um_ssl_call_body(VALUE arg) {
  struct um_ssl_call_arg *c = (struct um_ssl_call_arg *)arg;
  c->link->defer_reads = c->blocking; // reset by um_ssl_locked's ensure
  return c->fn(c->arg);
}

// As um_ssl_locked on the lock on OpenSSL calls. blocking: fn is one
// attempt of a blocking method, which waits for data with um_ssl_fill when
// OpenSSL wants to read (so the BIO tries no recv of its own).
VALUE um_ssl_call(VALUE sock, bool blocking, VALUE (*fn)(VALUE), VALUE arg) {
  struct um_ssl_link *link = um_ssl_link_of(sock);
  if (!link) return fn(arg);
  struct um_ssl_call_arg c = { .link = link, .blocking = blocking, .fn = fn, .arg = arg };
  return um_ssl_locked(sock, false, um_ssl_call_body, (VALUE)&c);
}

// len: 0, -1 (or nil, which the binding passes as -1): the whole buffer.
VALUE um_ssl_write(VALUE machine, VALUE sock, VALUE buffer, ssize_t len) {
  SSL *ssl = um_ssl_set_bio(machine, sock);
  buffer = um_buffer_stable(buffer);
  size_t size;
  const char *ptr = um_buffer_for_write(buffer, &size);
  if (len > 0 && (size_t)len > size)
    rb_raise(rb_eArgError, "length %zd exceeds the buffer size (%zu bytes)", len, size);
  struct um_ssl_write_arg w = { .ssl = ssl, .sock = sock, .ptr = ptr, .len = len > 0 ? (size_t)len : size };
  // An IO::Buffer stays locked while the fiber waits between attempts.
  bool locked = !RB_TYPE_P(buffer, T_STRING) && um_buffer_lock(buffer);
  VALUE ret = locked
    ? rb_ensure(um_ssl_locked_write, (VALUE)&w, um_ssl_buffer_unlock, buffer)
    : um_ssl_locked_write((VALUE)&w);
  RB_GC_GUARD(buffer);
  return ret;
}

// Sends close_notify, waiting (outside OpenSSL) while the socket's send
// buffer is full. Returns nil, or raises what interrupted it; OpenSSL's own
// failures (the peer gone) are ignored, as SSLSocket#sysclose does.
VALUE um_ssl_shutdown(VALUE sock) {
  SSL *ssl = um_ssl_get(sock);
  if (!um_ssl_link_of(sock) || !SSL_is_init_finished(ssl)) return Qnil;
  struct um_ssl_io_arg a = { .ssl = ssl, .sock = sock };
  int state = 0;
  rb_protect(um_ssl_shutdown_run, (VALUE)&a, &state);
  if (state) {
    VALUE errinfo = rb_errinfo();
    if (!rb_obj_is_kind_of(errinfo, rb_path2class("OpenSSL::SSL::SSLError")) &&
        !rb_obj_is_kind_of(errinfo, rb_eSystemCallError))
      rb_jump_tag(state);
    rb_set_errinfo(Qnil);
  }
  return Qnil;
}

// Waits until data came (um_ssl_fill) or the socket's fd is writable, for
// the stock blocking methods that loop over the *_nonblock ones. Returns
// nil, or the value a wake gave instead.
VALUE um_ssl_wait(VALUE sock, bool writable) {
  struct um_ssl_link *link = um_ssl_link_get(sock);
  struct um *m = um_get_machine(link->machine);
  VALUE v = writable ? um_wait_ready(m, link->fd, POLLOUT) : um_ssl_fill(m, link);
  return v == Qundef ? Qnil : v;
}

void Init_um_ssl(void) {
  rb_gc_register_address(&cSSLSocket);
  id_link = rb_intern("__um_ssl_link");
  id_to_io = rb_intern("to_io");
}
