# frozen_string_literal: true

require_relative "helper"
require "socket"

class NetTest < UMTestCase
  def setup
    super
    @dir = Dir.mktmpdir("um-net")
  end

  def teardown
    FileUtils.rm_rf(@dir)
    super
  end

  # The port a bound socket got (the fd stays open: the Socket object does
  # not own it).
  def local_port(fd)
    sock = Socket.for_fd(fd)
    sock.autoclose = false
    sock.local_address.ip_port
  end

  def tcp_socket(domain = UM::AF_INET, type = UM::SOCK_STREAM)
    track_fd(@machine.socket(domain, type))
  end

  # A listening socket on the loopback address and its port.
  def tcp_server(host = "127.0.0.1")
    fd = track_fd(@machine.tcp_listen(host, 0))
    [fd, local_port(fd)]
  end

  # A connected pair of TCP sockets: [client, server side].
  def tcp_pair(host = "127.0.0.1")
    listener, port = tcp_server(host)
    client = track_fd(@machine.tcp_connect(host, port))
    [client, track_fd(@machine.accept(listener))]
  end

  # No Ruby IO object may own a test's fd: its finalizer would close the
  # number later, when it may belong to something else (a ring).
  def ipv6_available?
    fd = @machine.socket(UM::AF_INET6, UM::SOCK_STREAM)
    @machine.bind(fd, "::1", 0)
    true
  rescue SystemCallError
    false
  ensure
    @machine.close(fd) if fd
  end

  def skip_without_ipv6
    skip "IPv6 loopback (::1) is not available here" unless ipv6_available?
  end

  def cloexec?(fd)
    IO.for_fd(fd, autoclose: false).close_on_exec?
  end

  def recv_exactly(fd, len)
    out = +""
    buf = +""
    while out.bytesize < len
      n = @machine.recv(fd, buf, len - out.bytesize, 0)
      break if n == 0

      out << buf
    end
    out
  end

  # socket

  def test_socket
    fd = tcp_socket
    assert_kind_of Integer, fd
    assert_equal UM::SOCK_STREAM, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_TYPE)
    assert_equal UM::AF_INET, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_DOMAIN)
    assert cloexec?(fd), "sockets are close-on-exec"

    udp = track_fd(@machine.socket(UM::AF_INET6, UM::SOCK_DGRAM, 0, 0))
    assert_equal UM::SOCK_DGRAM, @machine.getsockopt(udp, UM::SOL_SOCKET, UM::SO_TYPE)
    unix = track_fd(@machine.socket(UM::AF_UNIX, UM::SOCK_STREAM, 0))
    assert_equal UM::AF_UNIX, @machine.getsockopt(unix, UM::SOL_SOCKET, UM::SO_DOMAIN)
  end

  def test_socket_errors
    e = assert_raises(Errno::EAFNOSUPPORT) { @machine.socket(12_345, UM::SOCK_STREAM) }
    assert_match(/socket/, e.message)
    assert_raises(Errno::EINVAL) { @machine.socket(UM::AF_INET, 12_345) }
    assert_raises(TypeError) { @machine.socket(:inet, UM::SOCK_STREAM) }
    assert_raises(TypeError) { @machine.socket(UM::AF_INET, "stream") }
    assert_raises(TypeError) { @machine.socket(UM::AF_INET, UM::SOCK_STREAM, nil) }
    assert_raises(ArgumentError) { @machine.socket(UM::AF_INET) }
  end

  # bind / listen / accept / connect

  def test_tcp_ipv4_step_by_step
    server = tcp_socket
    assert_equal 0, @machine.bind(server, "127.0.0.1", 0)
    assert_equal 0, @machine.listen(server)
    assert_equal 1, @machine.getsockopt(server, UM::SOL_SOCKET, UM::SO_ACCEPTCONN)
    port = local_port(server)

    client = tcp_socket
    assert_equal 0, @machine.connect(client, "127.0.0.1", port)
    conn = track_fd(@machine.accept(server))
    assert cloexec?(conn), "accepted sockets are close-on-exec"

    assert_equal 5, @machine.send(client, "hello", 5, 0)
    buf = +""
    assert_equal 5, @machine.recv(conn, buf, 10, 0)
    assert_equal "hello", buf
    assert_equal 3, @machine.send(conn, "abc")
    assert_equal "abc", recv_exactly(client, 3)
  end

  def test_tcp_ipv6
    skip_without_ipv6
    server = tcp_socket(UM::AF_INET6)
    assert_equal 0, @machine.bind(server, "::1", 0)
    assert_equal 0, @machine.listen(server, 16)
    port = local_port(server)

    client = tcp_socket(UM::AF_INET6)
    assert_equal 0, @machine.connect(client, "[::1]", port)
    conn = track_fd(@machine.accept(server))
    @machine.send(client, "six", 3, 0)
    assert_equal "six", recv_exactly(conn, 3)
  end

  def test_tcp_listen_and_connect
    fd, port = tcp_server
    assert_equal 1, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_REUSEADDR)
    assert_equal 1, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_ACCEPTCONN)
    client = track_fd(@machine.tcp_connect("127.0.0.1", port))
    conn = track_fd(@machine.accept(fd))
    @machine.send(conn, "tcp")
    assert_equal "tcp", recv_exactly(client, 3)

    # "localhost" is 127.0.0.1 (no name lookup otherwise)
    other = track_fd(@machine.tcp_connect("localhost", port))
    track_fd(@machine.accept(fd))
    assert_kind_of Integer, other
  end

  def test_tcp_listen_and_connect_ipv6
    skip_without_ipv6
    client, conn = tcp_pair("::1")
    assert_equal UM::AF_INET6, @machine.getsockopt(client, UM::SOL_SOCKET, UM::SO_DOMAIN)
    @machine.send(client, "v6")
    assert_equal "v6", recv_exactly(conn, 2)
  end

  def test_tcp_listen_address_in_use
    _fd, port = tcp_server
    # SO_REUSEADDR does not allow two listeners on one port
    e = assert_raises(Errno::EADDRINUSE) { @machine.tcp_listen("127.0.0.1", port) }
    assert_match(/bind/, e.message)
  end

  def test_tcp_listen_wildcard
    fd = track_fd(@machine.tcp_listen("0.0.0.0", 0))
    port = local_port(fd)
    track_fd(@machine.tcp_connect("127.0.0.1", port))
    track_fd(@machine.accept(fd))
  end

  def test_bind_and_connect_packed_sockaddr
    server = tcp_socket
    assert_equal 0, @machine.bind(server, Socket.sockaddr_in(0, "127.0.0.1"))
    @machine.listen(server)
    port = local_port(server)
    client = tcp_socket
    assert_equal 0, @machine.connect(client, Socket.sockaddr_in(port, "127.0.0.1"))
    track_fd(@machine.accept(server))
  end

  def test_bind_uses_the_ring_when_the_kernel_has_it
    skip "IORING_OP_BIND/LISTEN need Linux 6.11" if UM.kernel_version < 611
    fd = tcp_socket
    ops = @machine.metrics[:total_ops]
    @machine.bind(fd, "127.0.0.1", 0)
    @machine.listen(fd)
    assert_equal ops + 2, @machine.metrics[:total_ops]
  end

  def test_unix_sockets
    path = File.join(@dir, "sock")
    server = track_fd(@machine.socket(UM::AF_UNIX, UM::SOCK_STREAM))
    assert_equal 0, @machine.bind(server, Socket.sockaddr_un(path))
    assert File.socket?(path)
    assert_equal 0, @machine.listen(server, 8)

    client = track_fd(@machine.socket(UM::AF_UNIX, UM::SOCK_STREAM))
    assert_equal 0, @machine.connect(client, Socket.sockaddr_un(path))
    conn = track_fd(@machine.accept(server))
    assert_equal 4, @machine.sendv(client, "un", "ix")
    assert_equal "unix", recv_exactly(conn, 4)

    assert_raises(Errno::EADDRINUSE) do
      @machine.bind(track_fd(@machine.socket(UM::AF_UNIX, UM::SOCK_STREAM)), Socket.sockaddr_un(path))
    end
    missing = track_fd(@machine.socket(UM::AF_UNIX, UM::SOCK_STREAM))
    assert_raises(Errno::ENOENT) { @machine.connect(missing, Socket.sockaddr_un(File.join(@dir, "nope"))) }
  end

  def test_connection_refused
    fd = tcp_socket
    @machine.bind(fd, "127.0.0.1", 0)
    port = local_port(fd) # bound, not listening: nothing accepts there
    client = tcp_socket
    e = assert_raises(Errno::ECONNREFUSED) { @machine.connect(client, "127.0.0.1", port) }
    assert_match(/connect/, e.message)
    assert_raises(Errno::ECONNREFUSED) { @machine.tcp_connect("127.0.0.1", port) }
  end

  def test_tcp_connect_failure_closes_its_socket
    fd = tcp_socket
    @machine.bind(fd, "127.0.0.1", 0)
    port = local_port(fd)
    probe = tcp_socket # the lowest free fd now
    @machine.close(@fds.delete(probe))
    assert_raises(Errno::ECONNREFUSED) { @machine.tcp_connect("127.0.0.1", port) }
    # the fd tcp_connect used is free again
    assert_equal probe, track_fd(@machine.socket(UM::AF_INET, UM::SOCK_STREAM))
  end

  def test_listen_and_accept_errors
    r, _w = pipe
    assert_raises(Errno::ENOTSOCK) { @machine.listen(r) }
    assert_raises(Errno::ENOTSOCK) { @machine.accept(r) }
    fd = tcp_socket
    e = assert_raises(Errno::EINVAL) { @machine.accept(fd) } # not listening
    assert_match(/accept/, e.message)
    assert_raises(TypeError) { @machine.listen(fd, "1") }
    assert_raises(TypeError) { @machine.accept(nil) }
  end

  def test_bad_addresses
    fd = tcp_socket
    ["example.com", "300.1.1.1", "1.2.3", "", "::g", "127.0.0.1 ", "a\0b", "[127.0.0.1"].each do |host|
      e = assert_raises(ArgumentError, host.inspect) { @machine.bind(fd, host, 0) }
      assert_match(/IP address/, e.message)
    end
    assert_raises(ArgumentError) { @machine.connect(fd, "127.0.0.1", 70_000) }
    assert_raises(ArgumentError) { @machine.connect(fd, "127.0.0.1", -1) }
    assert_raises(ArgumentError) { @machine.connect(fd, "127.0.0.1", 2**70) }
    assert_raises(ArgumentError) { @machine.tcp_listen("127.0.0.1", 65_536) }
    assert_raises(ArgumentError) { @machine.tcp_connect("nowhere", 80) }

    # packed sockaddrs of the wrong size or family
    assert_raises(ArgumentError) { @machine.bind(fd, "") }
    assert_raises(ArgumentError) { @machine.bind(fd, "x") }
    assert_raises(ArgumentError) { @machine.bind(fd, "garbage!") }
    assert_raises(ArgumentError) { @machine.connect(fd, Socket.sockaddr_in(80, "127.0.0.1")[0, 10]) }
    assert_raises(ArgumentError) { @machine.connect(fd, Socket.sockaddr_in(80, "127.0.0.1") + "xx") }
    assert_raises(ArgumentError) { @machine.connect(fd, [UM::AF_INET6].pack("S") + "\0" * 10) }
    assert_raises(ArgumentError) { @machine.connect(fd, "\0" * 300) }
    assert_raises(ArgumentError) { @machine.connect(fd, [UM::AF_UNIX].pack("S") + "x" * 200) }

    # the wrong family for the socket is the kernel's to refuse
    assert_raises(Errno::EAFNOSUPPORT, Errno::EINVAL) { @machine.connect(fd, "::1", 80) }
  end

  def test_bad_address_types
    fd = tcp_socket
    assert_raises(TypeError) { @machine.bind(fd, nil, 0) }
    assert_raises(TypeError) { @machine.bind(fd, :localhost, 0) }
    assert_raises(TypeError) { @machine.bind(fd, "127.0.0.1", "80") }
    assert_raises(TypeError) { @machine.bind(fd, "127.0.0.1", 80.0) }
    assert_raises(TypeError) { @machine.bind(fd, 12) }
    assert_raises(TypeError) { @machine.connect(fd, nil) }
    assert_raises(TypeError) { @machine.connect("3", "127.0.0.1", 80) }
    assert_raises(TypeError) { @machine.tcp_listen(nil, 0) }
    assert_raises(TypeError) { @machine.tcp_connect("127.0.0.1", nil) }
    assert_raises(ArgumentError) { @machine.bind(fd) }
    assert_raises(ArgumentError) { @machine.connect(fd, "127.0.0.1", 1, 2) }
  end

  def test_closed_fds
    r, w = pipe
    [r, w].each { @machine.close(@fds.delete(it)) }
    bad = r
    assert_raises(Errno::EBADF) { @machine.bind(bad, "127.0.0.1", 0) }
    assert_raises(Errno::EBADF) { @machine.listen(bad) }
    assert_raises(Errno::EBADF) { @machine.accept(bad) }
    assert_raises(Errno::EBADF) { @machine.connect(bad, "127.0.0.1", 1) }
    assert_raises(Errno::EBADF) { @machine.send(bad, "x", 1, 0) }
    e = assert_raises(Errno::EBADF) { @machine.recv(bad, +"", 1, 0) }
    assert_match(/recv/, e.message)
    assert_raises(Errno::EBADF) { @machine.sendv(bad, "x") }
    assert_raises(Errno::EBADF) { @machine.shutdown(bad, UM::SHUT_RDWR) }
    assert_raises(Errno::EBADF) { @machine.getsockopt(bad, UM::SOL_SOCKET, UM::SO_TYPE) }
    assert_raises(Errno::EBADF) { @machine.setsockopt(bad, UM::SOL_SOCKET, UM::SO_REUSEADDR, 1) }
    assert_raises(Errno::EBADF) { @machine.send_fd(bad, 0) }
    assert_raises(Errno::EBADF) { @machine.recv_fd(bad) }
  end

  def test_not_a_socket
    r, w = pipe
    assert_raises(Errno::ENOTSOCK) { @machine.bind(r, "127.0.0.1", 0) }
    assert_raises(Errno::ENOTSOCK) { @machine.connect(r, "127.0.0.1", 1) }
    assert_raises(Errno::ENOTSOCK) { @machine.send(w, "x") }
    assert_raises(Errno::ENOTSOCK) { @machine.recv(r, +"", 1) }
    assert_raises(Errno::ENOTSOCK) { @machine.shutdown(r, UM::SHUT_RD) }
    assert_raises(Errno::ENOTSOCK) { @machine.getsockopt(r, UM::SOL_SOCKET, UM::SO_TYPE) }
  end

  # send / recv

  def test_send_and_recv_variants
    a, b = tcp_pair
    assert_equal 3, @machine.send(a, "abcdef", 3, 0)
    assert_equal 2, @machine.send(a, IO::Buffer.for("gh"), nil, 0)
    assert_equal "abcgh", recv_exactly(b, 5)

    # MSG_PEEK leaves the data queued
    @machine.send(a, "peek")
    sleep 0.01
    buf = +""
    assert_equal 4, @machine.recv(b, buf, 10, UM::MSG_PEEK)
    assert_equal "peek", buf
    assert_equal 4, @machine.recv(b, buf, 10)
    assert_equal "peek", buf

    # into an IO::Buffer
    @machine.send(a, "iobuf")
    io_buf = IO::Buffer.new(16)
    assert_equal 5, @machine.recv(b, io_buf, 16, 0)
    assert_equal "iobuf", io_buf.get_string(0, 5)
  end

  # 1.0: len -1 sends the whole buffer; flags can follow positionally.
  def test_send_len_minus_one_is_whole_buffer
    a, b = tcp_pair
    assert_equal 5, @machine.send(a, "whole", -1, 0)
    assert_equal 3, @machine.send(a, IO::Buffer.for("buf"), -1, 0)
    buf = +""
    @machine.recv(b, buf, 8, UM::MSG_WAITALL)
    assert_equal "wholebuf", buf
  end

  def test_recv_grows_string_and_sets_length
    a, b = tcp_pair
    data = "z" * 100_000
    f = @machine.spin { @machine.send(a, data) }
    buf = +"previous content"
    n = @machine.recv(b, buf, 200_000, 0)
    assert_operator n, :>, 0
    assert_equal n, buf.bytesize
    assert_equal "z" * n, buf
    recv_exactly(b, 100_000 - n)
    @machine.join(f)
  end

  def test_recv_eof
    a, b = tcp_pair
    @machine.close(@fds.delete(a))
    buf = +"old"
    assert_equal 0, @machine.recv(b, buf, 10, 0)
    assert_equal "", buf
  end

  def test_send_recv_errors
    a, _b = tcp_pair
    assert_raises(ArgumentError) { @machine.send(a, "abc", 4, 0) }
    assert_raises(ArgumentError) { @machine.send(a, "abc", -2, 0) }
    assert_raises(TypeError) { @machine.send(a, 123, 3, 0) }
    assert_raises(TypeError) { @machine.send(a, "abc", "3", 0) }
    assert_raises(TypeError) { @machine.send(a, "abc", 3, nil) }
    assert_raises(TypeError) { @machine.recv(a, nil, 3, 0) }
    assert_raises(TypeError) { @machine.recv(a, +"", 3, "0") }
    assert_raises(ArgumentError) { @machine.recv(a, +"", -3, 0) }
    assert_raises(FrozenError) { @machine.recv(a, "frozen", 3, 0) }
    e = assert_raises(ArgumentError) { @machine.recv(a, IO::Buffer.new(8).slice(0, 4), 8, 0) }
    assert_match(/cannot grow/, e.message)
    assert_raises(IO::Buffer::AccessError) { @machine.recv(a, IO::Buffer.for("ro"), 1, 0) }
    assert_raises(ArgumentError) { @machine.recv(a) }
    assert_raises(ArgumentError) { @machine.send(a) }
  end

  def test_send_unaffected_by_later_change
    a, b = tcp_pair
    buf = +"original"
    f = @machine.spin { @machine.send(a, buf) }
    @machine.snooze # the send is queued, not yet submitted
    buf.replace("changed!")
    @machine.join(f)
    assert_equal "original", recv_exactly(b, 8)
  end

  def test_reset_by_peer
    a, b = tcp_pair
    @machine.setsockopt(b, UM::SOL_SOCKET, UM::SO_LINGER, 0)
    assert_equal 0, @machine.getsockopt(b, UM::SOL_SOCKET, UM::SO_LINGER)
    @machine.close(@fds.delete(b)) # linger 0: RST instead of FIN
    e = assert_raises(Errno::ECONNRESET) { @machine.recv(a, +"", 10, 0) }
    assert_match(/recv/, e.message)
  end

  def test_epipe_after_shutdown
    a, _b = tcp_pair
    assert_equal 0, @machine.shutdown(a, UM::SHUT_WR)
    e = assert_raises(Errno::EPIPE) { @machine.send(a, "x") }
    assert_match(/send/, e.message)
    assert_raises(Errno::EPIPE) { @machine.sendv(a, "x", "y") }
  end

  def test_epipe_or_reset_after_peer_closed
    a, b = tcp_pair
    @machine.close(@fds.delete(b))
    error = assert_raises(Errno::EPIPE, Errno::ECONNRESET) do
      # The first sends are buffered; the peer's RST makes a later one fail.
      100.times do
        @machine.send(a, "x" * 1000)
        @machine.sleep(0.001)
      end
    end
    assert_match(/send/, error.message)
  end

  # sendv

  def test_sendv
    a, b = tcp_pair
    assert_equal 9, @machine.sendv(a, "abc", +"", "def", IO::Buffer.for("ghi"))
    assert_equal "abcdefghi", recv_exactly(b, 9)
    assert_equal 0, @machine.sendv(a)
    assert_equal 0, @machine.sendv(a, "", "")
  end

  def test_sendv_large_partial
    a, b = UM.socketpair(UM::AF_UNIX, UM::SOCK_STREAM, 0).each { track_fd(it) }
    parts = 4.times.map { |i| i.to_s * 500_000 }
    reader = @machine.spin { recv_exactly(b, 2_000_000) }
    assert_equal 2_000_000, @machine.sendv(a, *parts)
    assert_equal parts.join, @machine.join(reader)
  end

  def test_sendv_errors
    a, _b = tcp_pair
    assert_raises(TypeError) { @machine.sendv(a, "x", :y) }
    assert_raises(TypeError) { @machine.sendv(nil, "x") }
    assert_raises(ArgumentError) { @machine.sendv }
    assert_raises(ArgumentError) { @machine.sendv(a, *(["x"] * 1025)) }
  end

  # shutdown

  def test_shutdown
    a, b = tcp_pair
    @machine.send(a, "last")
    assert_equal 0, @machine.shutdown(a, UM::SHUT_WR)
    assert_equal "last", recv_exactly(b, 4)
    assert_equal 0, @machine.recv(b, +"", 10, 0)
    @machine.send(b, "still open") # the other direction still works
    assert_equal "still open", recv_exactly(a, 10)
    assert_raises(Errno::EINVAL) { @machine.shutdown(a, 42) }
    assert_raises(Errno::ENOTCONN) { @machine.shutdown(tcp_socket, UM::SHUT_RDWR) }
    assert_raises(TypeError) { @machine.shutdown(a, nil) }
  end

  def test_shutdown_async
    a, b = tcp_pair
    assert_equal a, @machine.shutdown_async(a, UM::SHUT_WR)
    assert_equal 0, @machine.recv(b, +"", 10, 0)
    # Failures to reach the socket are counted. (Errors of the shutdown
    # itself, such as ENOTCONN, are not: the kernel's io_shutdown does not
    # mark the request failed, so IOSQE_CQE_SKIP_SUCCESS drops their CQE.)
    r, _w = pipe
    @machine.shutdown_async(r, UM::SHUT_RDWR) # ENOTSOCK
    @machine.shutdown_async(9999, UM::SHUT_RDWR) # EBADF
    @machine.sleep(0.01)
    assert_equal 2, @machine.metrics[:async_errors]
    assert_equal 0, @machine.metrics[:ops_pending]
  end

  # options

  def test_socket_options
    fd = tcp_socket
    assert_equal 0, @machine.getsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY)
    assert_equal 0, @machine.setsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY, true)
    assert_equal 1, @machine.getsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY)
    @machine.setsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY, false)
    assert_equal 0, @machine.getsockopt(fd, UM::IPPROTO_TCP, UM::TCP_NODELAY)

    @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_KEEPALIVE, 1)
    assert_equal 1, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_KEEPALIVE)
    @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_RCVBUF, 65_536)
    assert_operator @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_RCVBUF), :>=, 65_536
    assert_equal 0, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_ERROR)

    assert_equal(-1, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_LINGER))
    @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_LINGER, 5)
    assert_equal 5, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_LINGER)
    @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_LINGER, false)
    assert_equal(-1, @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_LINGER))
  end

  def test_socket_option_errors
    fd = tcp_socket
    e = assert_raises(Errno::ENOPROTOOPT) { @machine.getsockopt(fd, UM::SOL_SOCKET, 9999) }
    assert_match(/getsockopt/, e.message)
    assert_raises(Errno::ENOPROTOOPT) { @machine.setsockopt(fd, UM::SOL_SOCKET, 9999, 1) }
    # a struct timeval is not an Integer
    assert_raises(ArgumentError) { @machine.getsockopt(fd, UM::SOL_SOCKET, UM::SO_RCVTIMEO) }
    assert_raises(TypeError) { @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_KEEPALIVE, "1") }
    assert_raises(TypeError) { @machine.setsockopt(fd, UM::SOL_SOCKET, UM::SO_KEEPALIVE, nil) }
    assert_raises(TypeError) { @machine.getsockopt(fd, nil, UM::SO_TYPE) }
    assert_raises(TypeError) { @machine.getsockopt(fd, UM::SOL_SOCKET, :type) }
  end

  # send_fd / recv_fd

  def test_send_fd_and_recv_fd
    a, b = socketpair
    r, w = pipe
    assert_equal w, @machine.send_fd(a, w)
    received = track_fd(@machine.recv_fd(b))
    refute_equal w, received
    assert cloexec?(received), "received fds are close-on-exec"

    @machine.write(received, "through the passed fd")
    assert_equal "through the passed fd", read_once(r, 100)

    # the original can be closed: the received one keeps the pipe open
    @machine.close(@fds.delete(w))
    @machine.write(received, "!")
    assert_equal "!", read_once(r, 10)
  end

  def test_recv_fd_waits_for_the_sender
    a, b = socketpair
    _r, w = pipe
    f = @machine.spin { @machine.recv_fd(b) }
    @machine.snooze
    refute f.done?
    @machine.send_fd(a, w)
    track_fd(@machine.join(f))
  end

  def test_recv_fd_eof_and_errors
    a, b = socketpair
    @machine.send(a, "no fd here")
    assert_raises(UM::Error) { @machine.recv_fd(b) }
    @machine.close(@fds.delete(a))
    recv_exactly(b, 100) # the rest of the plain data
    assert_nil @machine.recv_fd(b)

    c, _d = socketpair
    assert_raises(Errno::EBADF) { @machine.send_fd(c, 9999) }
    r, _w = pipe
    assert_raises(Errno::ENOTSOCK) { @machine.send_fd(r, r) }
    assert_raises(TypeError) { @machine.send_fd(c, nil) }
    assert_raises(TypeError) { @machine.recv_fd("c") }
  end

  # non-blocking sockets (io_uring answers EAGAIN: poll, then retry)

  def test_nonblocking_sockets
    listener, port = tcp_server
    IO.for_fd(listener, autoclose: false).nonblock = true
    acceptor = @machine.spin { @machine.accept(listener) }
    @machine.snooze

    client = tcp_socket(UM::AF_INET, UM::SOCK_STREAM | UM::SOCK_NONBLOCK)
    assert_equal 0, @machine.connect(client, "127.0.0.1", port)
    conn = track_fd(@machine.join(acceptor))
    IO.for_fd(conn, autoclose: false).nonblock = true

    reader = @machine.spin { recv_exactly(conn, 6) }
    @machine.snooze
    refute reader.done?
    @machine.send(client, "nb", 2, 0)
    @machine.snooze
    @machine.sendv(client, "ok", "!!")
    assert_equal "nbok!!", @machine.join(reader)

    # a full send buffer: the sender waits instead of failing
    data = "y" * 4_000_000
    sender = @machine.spin { @machine.sendv(client, data) }
    assert_equal data.bytesize, recv_exactly(conn, data.bytesize).bytesize
    assert_equal data.bytesize, @machine.join(sender)

    # MSG_DONTWAIT asks for EAGAIN
    assert_raises(Errno::EAGAIN) { @machine.recv(conn, +"", 10, UM::MSG_DONTWAIT) }

    refused = tcp_socket(UM::AF_INET, UM::SOCK_STREAM | UM::SOCK_NONBLOCK)
    closed_port = local_port(tcp_socket.tap { @machine.bind(it, "127.0.0.1", 0) })
    assert_raises(Errno::ECONNREFUSED) { @machine.connect(refused, "127.0.0.1", closed_port) }
  end

  # cancellation

  def test_timeout_during_accept
    listener, port = tcp_server
    assert_raises(Timeout::Error) { @machine.timeout(0.05, Timeout::Error) { @machine.accept(listener) } }
    assert_no_pending_ops
    # the listener still works
    client = track_fd(@machine.tcp_connect("127.0.0.1", port))
    assert_kind_of Integer, track_fd(@machine.accept(listener))
    assert_kind_of Integer, client
  end

  def test_timeout_during_recv
    a, b = tcp_pair
    buf = +"untouched"
    t0 = monotonic
    assert_raises(Timeout::Error) { @machine.timeout(0.05, Timeout::Error) { @machine.recv(b, buf, 100, 0) } }
    assert_operator monotonic - t0, :>=, 0.04
    assert_no_pending_ops
    assert_equal "untouched", buf
    buf << " and writable" # unlocked again

    @machine.send(a, "later")
    @machine.sleep(0.01)
    assert_equal "untouched and writable", buf
    assert_equal "later", recv_exactly(b, 5)
  end

  def test_timeout_during_recv_io_buffer
    _a, b = tcp_pair
    io_buf = IO::Buffer.new(8)
    assert_raises(Timeout::Error) { @machine.timeout(0.02, Timeout::Error) { @machine.recv(b, io_buf, 8, 0) } }
    assert_no_pending_ops
    refute io_buf.locked?
  end

  def test_timeout_during_connect
    listener = tcp_socket
    @machine.bind(listener, "127.0.0.1", 0)
    @machine.listen(listener, 0)
    port = local_port(listener)
    # backlog 0: one connection fills the accept queue, the next SYN is dropped
    track_fd(@machine.tcp_connect("127.0.0.1", port))
    client = tcp_socket
    begin
      @machine.timeout(0.05, Timeout::Error) { @machine.connect(client, "127.0.0.1", port) }
    rescue Timeout::Error
      assert_no_pending_ops
      return
    end
    skip "this kernel completed the connect despite the full backlog"
  end

  def test_timeout_during_send
    a, _b = tcp_pair
    data = "s" * 1_000_000
    # send may be partial: keep sending until the socket buffers are full
    assert_raises(Timeout::Error) { @machine.timeout(0.05, Timeout::Error) { loop { @machine.send(a, data) } } }
    assert_no_pending_ops
  end

  def test_timeout_during_sendv
    a, _b = tcp_pair
    assert_raises(Timeout::Error) do
      @machine.timeout(0.05, Timeout::Error) { @machine.sendv(a, "v" * 16_000_000, "w" * 16_000_000) }
    end
    assert_no_pending_ops
    assert_equal 0, @machine.metrics[:ops_runqueue]
  end

  def test_timeout_during_recv_fd
    _a, b = socketpair
    assert_raises(Timeout::Error) { @machine.timeout(0.02, Timeout::Error) { @machine.recv_fd(b) } }
    assert_no_pending_ops
  end

  def test_terminate_during_recv
    _a, b = tcp_pair
    buf = +""
    f = @machine.spin { @machine.recv(b, buf, 10, 0) }
    @machine.snooze
    @machine.terminate(f)
    assert_kind_of UM::Terminate, @machine.join(f)
    assert_no_pending_ops
    buf << "unlocked"
  end

  # many clients

  def test_echo_server_with_1000_clients
    clients = 1000
    messages = 3
    listener, port = tcp_server
    handlers = []
    server = @machine.spin do
      loop do
        conn = @machine.accept(listener)
        handlers << @machine.spin do
          buf = +""
          while (n = @machine.recv(conn, buf, 4096, 0)) > 0
            sent = 0
            sent += @machine.send(conn, buf.byteslice(sent..), nil, 0) while sent < n
          end
          @machine.close(conn)
        end
      end
    end

    t0 = monotonic
    fibers = clients.times.map do |i|
      @machine.spin do
        fd = @machine.tcp_connect("127.0.0.1", port)
        ok = messages.times.all? do |j|
          payload = "client #{i} message #{j} #{"#" * (i % 97)} #{rand(1 << 60)}\n"
          @machine.send(fd, payload, nil, 0)
          recv_exactly(fd, payload.bytesize) == payload
        end
        @machine.close(fd)
        ok
      end
    end
    results = @machine.join(*fibers)
    elapsed = monotonic - t0

    errors = results.grep(Exception)
    assert_empty errors, -> { errors.first(3).map(&:inspect).join(", ") }
    assert_equal [true] * clients, results
    @machine.join(*handlers)
    assert_equal clients, handlers.size
    @machine.terminate(server)
    @machine.join(server)
    assert_no_pending_ops
    warn format("\n  echo: %d clients x %d messages in %.3fs", clients, messages, elapsed) if ENV["UM_VERBOSE"]
  end
end
