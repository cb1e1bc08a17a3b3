# frozen_string_literal: true

require "minitest/autorun"
require "socket"
require "uma"

# Uma.peer_ip (REMOTE_ADDR) on real sockets.
class TestUmaPeerIP < Minitest::Test
  def peer_of_accepted(host)
    server = TCPServer.new(host, 0)
    client = TCPSocket.new(host, server.addr[1])
    conn = server.accept
    Uma.peer_ip(conn.fileno)
  ensure
    [conn, client, server].each { |s| s&.close }
  end

  def test_ipv4_and_ipv6
    assert_equal "127.0.0.1", peer_of_accepted("127.0.0.1")
    begin
      assert_equal "::1", peer_of_accepted("::1")
    rescue Errno::EADDRNOTAVAIL, Errno::EAFNOSUPPORT
      skip "no IPv6 loopback on this machine"
    end
  end

  def test_unix_socket_unconnected_and_bad_fds_give_nil
    a, b = UNIXSocket.pair
    assert_nil Uma.peer_ip(a.fileno)
    tcp = Socket.new(:INET, :STREAM)
    assert_nil Uma.peer_ip(tcp.fileno)
    r, w = IO.pipe
    assert_nil Uma.peer_ip(r.fileno)
    assert_nil Uma.peer_ip(1_000_000)
    assert_raises(TypeError) { Uma.peer_ip("3") }
  ensure
    [a, b, tcp, r, w].each { |io| io&.close }
  end
end
