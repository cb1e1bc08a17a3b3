// Ruby bindings of the socket operations (um_net.c): argument checks,
// address parsing and the method table.
#include "um.h"
#include <ruby/io/buffer.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>


// Argument checks

// Addresses

static int um_net_port_arg(VALUE port) {
  if (!RB_INTEGER_TYPE_P(port))
    rb_raise(rb_eTypeError, "port must be an Integer, not %s", rb_obj_classname(port));
  if (!FIXNUM_P(port) || FIX2LONG(port) < 0 || FIX2LONG(port) > 65535)
    rb_raise(rb_eArgError, "port must be between 0 and 65535 (got %"PRIsVALUE")", port);
  return (int)FIX2LONG(port);
}

// An IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]"; "localhost" is
// 127.0.0.1) and a port. Names are not resolved: no DNS lookup may block
// the machine's thread.
static socklen_t um_net_host_port_addr(VALUE host, VALUE port, struct sockaddr_storage *ss) {
  if (!RB_TYPE_P(host, T_STRING))
    rb_raise(rb_eTypeError, "host must be a String, not %s", rb_obj_classname(host));
  int port_num = um_net_port_arg(port);

  char buf[INET6_ADDRSTRLEN + 2];
  long len = RSTRING_LEN(host);
  const char *ptr = RSTRING_PTR(host);
  if (len >= 2 && ptr[0] == '[' && ptr[len - 1] == ']') {
    ptr++;
    len -= 2;
  }
  if (len <= 0 || len >= (long)sizeof(buf) || memchr(ptr, '\0', (size_t)len))
    goto invalid;
  memcpy(buf, ptr, (size_t)len);
  buf[len] = '\0';
  if (strcmp(buf, "localhost") == 0) strcpy(buf, "127.0.0.1");

  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, buf, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port_num);
    return sizeof(*sin);
  }
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port_num);
    return sizeof(*sin6);
  }

invalid:
  rb_raise(rb_eArgError,
    "invalid IP address %+"PRIsVALUE" (an IPv4 or IPv6 address is needed; host names are not resolved)", host);
}

// A packed sockaddr as made by Socket.sockaddr_in / Socket.sockaddr_un.
static socklen_t um_net_packed_addr(VALUE str, struct sockaddr_storage *ss) {
  if (!RB_TYPE_P(str, T_STRING))
    rb_raise(rb_eTypeError, "address must be a packed sockaddr String (or host and port), not %s",
      rb_obj_classname(str));
  long len = RSTRING_LEN(str);
  if (len < (long)sizeof(sa_family_t) || len > (long)sizeof(*ss))
    rb_raise(rb_eArgError, "not a packed sockaddr (%ld bytes)", len);

  memset(ss, 0, sizeof(*ss));
  memcpy(ss, RSTRING_PTR(str), (size_t)len);
  switch (ss->ss_family) {
    case AF_INET:
      if (len != sizeof(struct sockaddr_in))
        rb_raise(rb_eArgError, "an AF_INET sockaddr has %zu bytes, not %ld", sizeof(struct sockaddr_in), len);
      break;
    case AF_INET6:
      if (len != sizeof(struct sockaddr_in6))
        rb_raise(rb_eArgError, "an AF_INET6 sockaddr has %zu bytes, not %ld", sizeof(struct sockaddr_in6), len);
      break;
    case AF_UNIX:
      if (len > (long)sizeof(struct sockaddr_un))
        rb_raise(rb_eArgError, "an AF_UNIX sockaddr has at most %zu bytes, not %ld", sizeof(struct sockaddr_un), len);
      break;
    default:
      rb_raise(rb_eArgError, "not a packed sockaddr: address family %d is not AF_INET, AF_INET6 or AF_UNIX",
        (int)ss->ss_family);
  }
  return (socklen_t)len;
}

// (fd, host, port) or (fd, sockaddr); argv starts after the fd.
static socklen_t um_net_addr_args(int argc, VALUE *argv, struct sockaddr_storage *ss) {
  return argc == 2 ? um_net_host_port_addr(argv[0], argv[1], ss) : um_net_packed_addr(argv[0], ss);
}

// Methods

/*
 * call-seq: socket(domain, type, protocol = 0, flags = 0) -> fd
 *
 * Creates a socket (close-on-exec), e.g.
 * <tt>socket(UM::AF_INET, UM::SOCK_STREAM)</tt>.
 *
 * @example
 *   fd = machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
 */
static VALUE um_socket_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 4);
  int domain = um_arg_int(argv[0], "domain");
  int type = um_arg_int(argv[1], "type");
  int protocol = argc > 2 ? um_arg_int(argv[2], "protocol") : 0;
  int flags = argc > 3 ? um_arg_int(argv[3], "flags") : 0;
  return um_socket(m, domain, type, protocol, (unsigned)flags);
}

/*
 * call-seq:
 *   bind(fd, host, port) -> 0
 *   bind(fd, sockaddr) -> 0
 *
 * Binds the socket to an IPv4 or IPv6 address and port, or to a packed
 * sockaddr (Socket.sockaddr_in, Socket.sockaddr_un). Host names are not
 * resolved ("localhost" excepted).
 *
 * @example
 *   fd = machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
 *   machine.bind(fd, "127.0.0.1", 9000)  # => 0
 *   machine.bind(unix_fd, Socket.sockaddr_un("/tmp/app.sock"))
 */
static VALUE um_bind_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 3);
  int fd = um_arg_fd(argv[0]);
  struct sockaddr_storage ss;
  socklen_t len = um_net_addr_args(argc - 1, argv + 1, &ss);
  return um_bind(m, fd, (struct sockaddr *)&ss, len);
}

/*
 * call-seq: listen(fd, backlog = UM::SOMAXCONN) -> 0
 *
 * Marks the socket as accepting connections.
 *
 * @example
 *   machine.bind(fd, "127.0.0.1", 9000)
 *   machine.listen(fd, 128)  # => 0
 */
static VALUE um_listen_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 1, 2);
  int fd = um_arg_fd(argv[0]);
  int backlog = argc > 1 ? um_arg_int(argv[1], "backlog") : SOMAXCONN;
  return um_listen(m, fd, backlog);
}

/*
 * call-seq: accept(fd) -> fd
 *
 * Waits for a connection on the listening socket; returns the connected
 * socket (close-on-exec).
 *
 * @example
 *   server = machine.tcp_listen("127.0.0.1", 9000)
 *   conn = machine.accept(server)  # => fd of the connection
 */
static VALUE um_accept_m(VALUE self, VALUE fd) {
  struct um *m = um_get_machine(self);
  return um_accept(m, um_arg_fd(fd));
}

/*
 * call-seq:
 *   connect(fd, host, port) -> 0
 *   connect(fd, sockaddr) -> 0
 *
 * Connects the socket; the address forms are those of #bind.
 *
 * @example
 *   fd = machine.socket(UM::AF_INET, UM::SOCK_STREAM, 0, 0)
 *   machine.connect(fd, "127.0.0.1", 9000)  # => 0
 */
static VALUE um_connect_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 3);
  int fd = um_arg_fd(argv[0]);
  struct sockaddr_storage ss;
  socklen_t len = um_net_addr_args(argc - 1, argv + 1, &ss);
  return um_connect(m, fd, (struct sockaddr *)&ss, len);
}

/*
 * call-seq: send(fd, buffer, len = nil, flags = 0) -> Integer
 *
 * Sends up to +len+ bytes of the buffer (nil or -1: all of it); returns the
 * bytes sent, which may be fewer. A closed peer raises Errno::EPIPE (never
 * SIGPIPE).
 *
 * @example
 *   machine.send(fd, "ping", 4, 0)  # => 4
 *   machine.send(fd, "pong")        # => 4 (whole buffer, no flags)
 */
static VALUE um_send_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 4);
  int fd = um_arg_fd(argv[0]);
  um_arg_buffer(argv[1]);
  ssize_t len = argc > 2 ? um_arg_write_len(argv[2], "length") : -1;
  int flags = argc > 3 ? um_arg_int(argv[3], "flags") : 0;
  return um_send(m, fd, argv[1], len, flags);
}

/*
 * call-seq: recv(fd, buffer, maxlen = nil, flags = 0) -> Integer
 *
 * Receives up to +maxlen+ bytes into the buffer (a String is grown and ends
 * where the data ends, as with #read). Returns the bytes received, 0 at EOF.
 *
 * @example
 *   buf = +""
 *   machine.recv(fd, buf, 4096, 0)  # => bytes received, 0 at EOF
 */
static VALUE um_recv_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 2, 4);
  int fd = um_arg_fd(argv[0]);
  VALUE buffer = argv[1];
  um_arg_buffer(buffer);
  ssize_t maxlen = argc > 2 ? um_arg_len(argv[2], "length") : -1;
  int flags = argc > 3 ? um_arg_int(argv[3], "flags") : 0;
  if (maxlen < 0) maxlen = (ssize_t)um_buffer_default_read_len(buffer, 0);
  return um_recv(m, fd, buffer, maxlen, flags);
}

/*
 * call-seq: sendv(fd, *buffers) -> Integer
 *
 * Sends every buffer in order, all of them (partial sends are continued);
 * returns the total bytes.
 *
 * @example
 *   machine.sendv(fd, "HTTP/1.1 200 OK\r\n", "Content-Length: 2\r\n\r\n", "ok")
 */
static VALUE um_sendv_m(int argc, VALUE *argv, VALUE self) {
  struct um *m = um_get_machine(self);
  rb_check_arity(argc, 1, UNLIMITED_ARGUMENTS);
  int fd = um_arg_fd(argv[0]);
  int count = argc - 1;
  if (count > IOV_MAX) rb_raise(rb_eArgError, "too many buffers (%d, at most %d)", count, IOV_MAX);
  for (int i = 0; i < count; i++) um_arg_buffer(argv[1 + i]);
  return um_sendv(m, fd, count, argv + 1);
}

/*
 * call-seq: shutdown(fd, how) -> 0
 *
 * Shuts down reading (UM::SHUT_RD), writing (UM::SHUT_WR) or both
 * (UM::SHUT_RDWR).
 *
 * @example
 *   machine.shutdown(fd, UM::SHUT_WR)  # => 0; the peer reads EOF
 */
static VALUE um_shutdown_m(VALUE self, VALUE fd, VALUE how) {
  struct um *m = um_get_machine(self);
  return um_shutdown(m, um_arg_fd(fd), um_arg_int(how, "how"));
}

/*
 * call-seq: shutdown_async(fd, how) -> fd
 *
 * Like #shutdown without waiting. A bad fd or non-socket is counted in
 * metrics[:async_errors]; a refused shutdown (ENOTCONN) goes unreported, as
 * the kernel posts no CQE for it.
 *
 * @example
 *   machine.shutdown_async(fd, UM::SHUT_RDWR)  # returns at once
 */
static VALUE um_shutdown_async_m(VALUE self, VALUE fd, VALUE how) {
  struct um *m = um_get_machine(self);
  return um_shutdown_async(m, um_arg_fd(fd), um_arg_int(how, "how"));
}

/*
 * call-seq: getsockopt(fd, level, opt) -> Integer
 *
 * The value of an integer socket option (a boolean option gives 0 or 1).
 * SO_LINGER gives the linger time in seconds, -1 when lingering is off.
 *
 * @example
 *   machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_REUSEADDR)  # => 1
 */
static VALUE um_getsockopt_m(VALUE self, VALUE fd, VALUE level, VALUE opt) {
  struct um *m = um_get_machine(self);
  return um_getsockopt(m, um_arg_fd(fd), um_arg_int(level, "level"), um_arg_int(opt, "option"));
}

/*
 * call-seq: setsockopt(fd, level, opt, value) -> 0
 *
 * Sets an integer socket option; +value+ is an Integer, true or false.
 * SO_LINGER takes the linger time in seconds (0: reset the connection on
 * close), false or -1 to turn lingering off.
 *
 * @example
 *   machine.setsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY, true)  # => 0
 */
static VALUE um_setsockopt_m(VALUE self, VALUE fd, VALUE level, VALUE opt, VALUE value) {
  struct um *m = um_get_machine(self);
  int fd_num = um_arg_fd(fd);
  int level_num = um_arg_int(level, "level");
  int opt_num = um_arg_int(opt, "option");
  bool linger = level_num == SOL_SOCKET && opt_num == SO_LINGER;
  int v;
  if (value == Qtrue) v = 1;
  else if (value == Qfalse) v = linger ? -1 : 0;
  else if (RB_INTEGER_TYPE_P(value)) v = NUM2INT(value);
  else rb_raise(rb_eTypeError, "option value must be an Integer, true or false, not %s", rb_obj_classname(value));
  return um_setsockopt(m, fd_num, level_num, opt_num, v);
}

/*
 * call-seq: send_fd(sock, fd) -> fd
 *
 * Sends the file descriptor over a UNIX socket (SCM_RIGHTS); returns it.
 *
 * @example
 *   a, b = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0)
 *   r, w = UM.pipe
 *   machine.send_fd(a, w)  # => w
 *   machine.recv_fd(b)     # => a new fd for the same pipe end
 */
static VALUE um_send_fd_m(VALUE self, VALUE sock, VALUE fd) {
  struct um *m = um_get_machine(self);
  return um_send_fd(m, um_arg_fd(sock), um_arg_fd(fd));
}

/*
 * call-seq: recv_fd(sock) -> fd or nil
 *
 * Receives a file descriptor sent with #send_fd (it is close-on-exec);
 * nil at EOF.
 *
 * @example
 *   machine.send_fd(a, file_fd)
 *   fd = machine.recv_fd(b)  # => 9
 */
static VALUE um_recv_fd_m(VALUE self, VALUE sock) {
  struct um *m = um_get_machine(self);
  return um_recv_fd(m, um_arg_fd(sock));
}

/*
 * call-seq: tcp_listen(host, port) -> fd
 *
 * A TCP socket bound to the IPv4 or IPv6 address and port (SO_REUSEADDR
 * set), listening with a backlog of UM::SOMAXCONN.
 *
 * @example
 *   server = machine.tcp_listen("127.0.0.1", 9000)
 *   server6 = machine.tcp_listen("::1", 9000)
 */
static VALUE um_tcp_listen_m(VALUE self, VALUE host, VALUE port) {
  struct um *m = um_get_machine(self);
  struct sockaddr_storage ss;
  socklen_t len = um_net_host_port_addr(host, port, &ss);
  return um_tcp_listen(m, (struct sockaddr *)&ss, len);
}

/*
 * call-seq: tcp_connect(host, port) -> fd
 *
 * A TCP socket connected to the IPv4 or IPv6 address and port.
 *
 * @example
 *   fd = machine.tcp_connect("127.0.0.1", 9000)
 *   machine.send(fd, "hello")
 */
static VALUE um_tcp_connect_m(VALUE self, VALUE host, VALUE port) {
  struct um *m = um_get_machine(self);
  struct sockaddr_storage ss;
  socklen_t len = um_net_host_port_addr(host, port, &ss);
  return um_tcp_connect(m, (struct sockaddr *)&ss, len);
}

void Init_um_net_class(void) {
  rb_define_method(cUM, "socket", um_socket_m, -1);
  rb_define_method(cUM, "bind", um_bind_m, -1);
  rb_define_method(cUM, "listen", um_listen_m, -1);
  rb_define_method(cUM, "accept", um_accept_m, 1);
  rb_define_method(cUM, "connect", um_connect_m, -1);
  rb_define_method(cUM, "send", um_send_m, -1);
  rb_define_method(cUM, "recv", um_recv_m, -1);
  rb_define_method(cUM, "sendv", um_sendv_m, -1);
  rb_define_method(cUM, "shutdown", um_shutdown_m, 2);
  rb_define_method(cUM, "shutdown_async", um_shutdown_async_m, 2);
  rb_define_method(cUM, "getsockopt", um_getsockopt_m, 3);
  rb_define_method(cUM, "setsockopt", um_setsockopt_m, 4);
  rb_define_method(cUM, "send_fd", um_send_fd_m, 2);
  rb_define_method(cUM, "recv_fd", um_recv_fd_m, 1);
  rb_define_method(cUM, "tcp_listen", um_tcp_listen_m, 2);
  rb_define_method(cUM, "tcp_connect", um_tcp_connect_m, 2);
}
