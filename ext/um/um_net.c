// Sockets: creation, bind/listen/accept/connect, send/recv, shutdown,
// options and descriptor passing.
//
// Memory the kernel reads at submission or completion time (addresses,
// message headers, the SCM_RIGHTS control buffer) lives in the op record
// (op->data.net), which stays allocated until the kernel's last CQE, so an
// abandoned op never makes the kernel touch freed memory. Only send/recv
// buffers belong to the caller (OP_F_CALLER_MEM): cancelling those waits for
// the kernel to let go.
//
// The engine takes resolved addresses (struct sockaddr); parsing hosts,
// ports and packed sockaddr Strings is done by um_net_class.c.
#include "um.h"
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>


static void um_net_check_addr_len(socklen_t len) {
  if (len > sizeof(struct sockaddr_storage))
    rb_raise(rb_eArgError, "socket address too long (%u bytes)", (unsigned)len);
}

// IORING_OP_BIND and IORING_OP_LISTEN came with Linux 6.11. Whether the
// running kernel has them is probed once per process; older kernels get the
// plain syscalls, which never block.
static bool um_net_op_supported(struct um *m, int opcode, int *cache) {
  if (*cache < 0) {
    bool supported = false;
    if (um_kernel_version() >= 611) {
      struct io_uring_probe *probe = io_uring_get_probe_ring(&m->ring);
      if (probe) {
        supported = io_uring_opcode_supported(probe, opcode);
        io_uring_free_probe(probe);
      }
    }
    *cache = supported;
  }
  return *cache;
}

static int um_net_bind_supported = -1;
static int um_net_listen_supported = -1;

VALUE um_socket(struct um *m, int domain, int type, int protocol, unsigned flags) {
  struct um_op *op = um_op_new(m, OP_SOCKET, OP_F_RESULT_FD);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  // Close-on-exec, as Ruby's own sockets and UM.pipe / UM.socketpair are.
  io_uring_prep_socket(sqe, domain, type | SOCK_CLOEXEC, protocol, flags);
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "socket");
  return INT2NUM(res);
}

VALUE um_bind(struct um *m, int fd, const struct sockaddr *addr, socklen_t len) {
  um_net_check_addr_len(len);
  if (!um_net_op_supported(m, UM_IORING_OP_BIND, &um_net_bind_supported)) {
    if (bind(fd, addr, len) < 0) rb_sys_fail("bind");
    return INT2NUM(0);
  }

  struct um_op *op = um_op_new(m, OP_BIND, 0);
  memcpy(&op->data.net.addr, addr, len);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_bind(sqe, fd, (struct sockaddr *)&op->data.net.addr, len);
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "bind");
  return INT2NUM(res);
}

VALUE um_listen(struct um *m, int fd, int backlog) {
  if (!um_net_op_supported(m, UM_IORING_OP_LISTEN, &um_net_listen_supported)) {
    if (listen(fd, backlog) < 0) rb_sys_fail("listen");
    return INT2NUM(0);
  }

  struct um_op *op = um_op_new(m, OP_LISTEN, 0);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_listen(sqe, fd, backlog);
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "listen");
  return INT2NUM(res);
}

VALUE um_accept(struct um *m, int fd) {
  while (true) {
    struct um_op *op = um_op_new(m, OP_ACCEPT, OP_F_RESULT_FD);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    int32_t res;
    VALUE v = um_op_await(m, op, &res);
    if (v != Qundef) return v;
    if (res == -EAGAIN) {
      v = um_wait_ready(m, fd, POLLIN);
      if (v != Qundef) return v;
      continue;
    }
    um_raise_on_error(res, "accept");
    return INT2NUM(res);
  }
}

static int um_net_socket_domain(int fd) {
  int domain = -1;
  socklen_t len = sizeof(domain);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) return -1;
  return domain;
}

// After a non-blocking connect was started: waits until the socket is
// writable and raises the connect's error, if any. Qundef when it went well.
static VALUE um_net_connect_wait(struct um *m, int fd) {
  VALUE v = um_wait_ready(m, fd, POLLOUT);
  if (v != Qundef) return v;
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) rb_sys_fail("connect");
  if (err) rb_syserr_fail(err, "connect");
  return Qundef;
}

// On an O_NONBLOCK socket the kernel answers EINPROGRESS, or EAGAIN from
// io_uring, while the connection is being made: wait until it is, then ask
// again (EISCONN then means done). A UNIX socket's EAGAIN means the
// listener's backlog is full, which waiting for POLLOUT would not tell us
// the end of: raised as it is.
VALUE um_connect(struct um *m, int fd, const struct sockaddr *addr, socklen_t len) {
  um_net_check_addr_len(len);
  bool waited = false;
  while (true) {
    struct um_op *op = um_op_new(m, OP_CONNECT, 0);
    memcpy(&op->data.net.addr, addr, len);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    io_uring_prep_connect(sqe, fd, (struct sockaddr *)&op->data.net.addr, len);
    int32_t res;
    VALUE v = um_op_await(m, op, &res);
    if (v != Qundef) return v;

    if (res == 0 || (res == -EISCONN && waited)) return INT2NUM(0);
    bool in_progress = res == -EINPROGRESS || res == -EALREADY ||
      (res == -EAGAIN && um_net_socket_domain(fd) != AF_UNIX);
    if (!in_progress) um_raise_on_error(res, "connect");

    v = um_net_connect_wait(m, fd);
    if (v != Qundef) return v;
    waited = true;
  }
}

VALUE um_send(struct um *m, int fd, VALUE buffer, ssize_t len, int flags) {
  struct um_transfer t = { .kind = OP_SEND, .fd = fd, .buffer = buffer, .len = len, .flags = flags };
  return um_transfer(m, &t);
}

// Receives into the buffer from its start; a String ends where the data
// ends, as with read.
VALUE um_recv(struct um *m, int fd, VALUE buffer, ssize_t maxlen, int flags) {
  struct um_transfer t = { .kind = OP_RECV, .fd = fd, .buffer = buffer, .len = maxlen, .flags = flags };
  return um_transfer(m, &t);
}

// Sends every byte of every buffer (see um_write_all).
VALUE um_sendv(struct um *m, int fd, int argc, VALUE *argv) {
  return um_write_all(m, fd, argc, argv, -1, true);
}

VALUE um_shutdown(struct um *m, int fd, int how) {
  struct um_op *op = um_op_new(m, OP_SHUTDOWN, 0);
  struct io_uring_sqe *sqe = um_get_sqe(m, op);
  io_uring_prep_shutdown(sqe, fd, how);
  int32_t res;
  VALUE v = um_op_await(m, op, &res);
  if (v != Qundef) return v;
  um_raise_on_error(res, "shutdown");
  return INT2NUM(res);
}

// No record, as with close_async: only a failure posts a CQE (counted in
// metrics as an async error). Only failures to reach the socket (EBADF,
// ENOTSOCK) do: io_shutdown does not mark the request failed when the
// shutdown itself fails (ENOTCONN, EINVAL), so the kernel skips that CQE.
VALUE um_shutdown_async(struct um *m, int fd, int how) {
  struct io_uring_sqe *sqe = um_get_sqe(m, NULL);
  io_uring_prep_shutdown(sqe, fd, how);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  m->metrics.total_ops++;
  return INT2NUM(fd);
}

// getsockopt and setsockopt are plain syscalls: they never block, and
// io_uring's socket commands for them (IORING_OP_URING_CMD with
// SOCKET_URING_OP_GETSOCKOPT/SETSOCKOPT) need Linux 6.7.
//
// SO_LINGER is given as the linger time in seconds (0: reset the
// connection on close), -1 meaning off.
VALUE um_getsockopt(struct um *m, int fd, int level, int opt) {
  union {
    int i;
    unsigned char byte;
    struct linger linger;
    char raw[64];
  } value;
  memset(&value, 0, sizeof(value));
  socklen_t len = sizeof(value);
  if (getsockopt(fd, level, opt, &value, &len) < 0) rb_sys_fail("getsockopt");

  if (level == SOL_SOCKET && opt == SO_LINGER && len == sizeof(struct linger))
    return INT2NUM(value.linger.l_onoff ? value.linger.l_linger : -1);
  if (len == sizeof(int)) return INT2NUM(value.i);
  if (len == 1) return INT2NUM(value.byte);
  rb_raise(rb_eArgError, "getsockopt: option %d at level %d has a %u-byte value, not an Integer",
    opt, level, (unsigned)len);
}

VALUE um_setsockopt(struct um *m, int fd, int level, int opt, int value) {
  int ret;
  if (level == SOL_SOCKET && opt == SO_LINGER) {
    struct linger linger = { .l_onoff = value >= 0, .l_linger = value >= 0 ? value : 0 };
    ret = setsockopt(fd, level, opt, &linger, sizeof(linger));
  }
  else
    ret = setsockopt(fd, level, opt, &value, sizeof(value));
  if (ret < 0) rb_sys_fail("setsockopt");
  return INT2NUM(0);
}

// One data byte carries the SCM_RIGHTS message (a stream socket sends no
// control message without data). The header, the byte and the control
// buffer are all in the record.
static struct msghdr *um_net_fd_msg(struct um_op *op) {
  memset(&op->data.net, 0, sizeof(op->data.net));
  struct msghdr *msg = &op->data.net.msg;
  op->data.net.iov.iov_base = &op->data.net.byte;
  op->data.net.iov.iov_len = 1;
  msg->msg_iov = &op->data.net.iov;
  msg->msg_iovlen = 1;
  msg->msg_control = op->data.net.cmsg.buf;
  msg->msg_controllen = sizeof(op->data.net.cmsg.buf);
  return msg;
}

VALUE um_send_fd(struct um *m, int sock, int fd) {
  while (true) {
    struct um_op *op = um_op_new(m, OP_SENDMSG, 0);
    struct msghdr *msg = um_net_fd_msg(op);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    io_uring_prep_sendmsg(sqe, sock, msg, MSG_NOSIGNAL);
    int32_t res;
    VALUE v = um_op_await(m, op, &res);
    if (v != Qundef) return v;
    if (res == -EAGAIN) {
      v = um_wait_ready(m, sock, POLLOUT);
      if (v != Qundef) return v;
      continue;
    }
    um_raise_on_error(res, "send_fd");
    return INT2NUM(fd);
  }
}

// The control buffer is read directly: whether the kernel writes
// msg_controllen back into our header differs between kernel versions.
static int um_net_received_fd(struct um_op *op) {
  struct cmsghdr *cmsg = &op->data.net.cmsg.hdr;
  if (cmsg->cmsg_len < CMSG_LEN(sizeof(int))) return -1;
  if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  return fd;
}

// nil at EOF. The received fd is close-on-exec.
VALUE um_recv_fd(struct um *m, int sock) {
  while (true) {
    struct um_op *op = um_op_new(m, OP_RECVMSG, 0);
    struct msghdr *msg = um_net_fd_msg(op);
    struct io_uring_sqe *sqe = um_get_sqe(m, op);
    io_uring_prep_recvmsg(sqe, sock, msg, MSG_CMSG_CLOEXEC);
    VALUE v = um_op_run(m, op);
    if (v != Qundef) return v;

    int32_t res = op->res;
    int fd = res > 0 ? um_net_received_fd(op) : -1;
    um_op_release(m, op);
    if (res == -EAGAIN) {
      v = um_wait_ready(m, sock, POLLIN);
      if (v != Qundef) return v;
      continue;
    }
    um_raise_on_error(res, "recv_fd");
    if (res == 0) return Qnil;
    if (fd < 0) rb_raise(eUMError, "recv_fd: a message came without a file descriptor");
    return INT2NUM(fd);
  }
}

// tcp_listen / tcp_connect: the socket is closed again if setting it up
// fails or the fiber is woken meanwhile.
struct um_tcp_ctx {
  struct um *m;
  int fd;
  const struct sockaddr *addr;
  socklen_t len;
};

static VALUE um_tcp_listen_setup(VALUE arg) {
  struct um_tcp_ctx *ctx = (struct um_tcp_ctx *)arg;
  int one = 1;
  if (setsockopt(ctx->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) rb_sys_fail("setsockopt");
  VALUE v = um_bind(ctx->m, ctx->fd, ctx->addr, ctx->len);
  if (v != INT2FIX(0)) return v;
  return um_listen(ctx->m, ctx->fd, SOMAXCONN);
}

static VALUE um_tcp_connect_setup(VALUE arg) {
  struct um_tcp_ctx *ctx = (struct um_tcp_ctx *)arg;
  return um_connect(ctx->m, ctx->fd, ctx->addr, ctx->len);
}

static VALUE um_tcp_socket(struct um *m, const struct sockaddr *addr, socklen_t len, VALUE (*setup)(VALUE)) {
  VALUE sock = um_socket(m, addr->sa_family, SOCK_STREAM, 0, 0);
  if (!FIXNUM_P(sock)) return sock;

  struct um_tcp_ctx ctx = { .m = m, .fd = FIX2INT(sock), .addr = addr, .len = len };
  int state = 0;
  VALUE v = rb_protect(setup, (VALUE)&ctx, &state);
  if (state || v != INT2FIX(0)) {
    close(ctx.fd);
    if (state) rb_jump_tag(state);
    return v;
  }
  return sock;
}

VALUE um_tcp_listen(struct um *m, const struct sockaddr *addr, socklen_t len) {
  return um_tcp_socket(m, addr, len, um_tcp_listen_setup);
}

VALUE um_tcp_connect(struct um *m, const struct sockaddr *addr, socklen_t len) {
  return um_tcp_socket(m, addr, len, um_tcp_connect_setup);
}
