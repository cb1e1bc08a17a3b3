/* Uma.peer_ip(fd): the IP address a connected socket's peer has, as text.
 *
 * Addrinfo#ip_address formats with getnameinfo, which Ruby 3.4 runs on a new
 * native thread each time (so a lookup can be interrupted): one thread per
 * connection. inet_ntop needs none.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "uma_ext.h"

/* Uma.peer_ip(fd) -> "127.0.0.1", "::1", or nil for a socket that is not
 * IPv4/IPv6 (a UNIX socket) or no longer connected. */
static VALUE uma_peer_ip(VALUE mod, VALUE fd) {
  struct sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  if (getpeername(NUM2INT(fd), (struct sockaddr *)&addr, &len) < 0) return Qnil;
  char text[INET6_ADDRSTRLEN];
  const char *ok = NULL;
  if (addr.ss_family == AF_INET)
    ok = inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, text, sizeof(text));
  else if (addr.ss_family == AF_INET6)
    ok = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, text, sizeof(text));
  return ok ? rb_str_new_cstr(text) : Qnil;
}

void uma_peer_class_init(void) {
  rb_define_singleton_method(mUma, "peer_ip", uma_peer_ip, 1);
}
