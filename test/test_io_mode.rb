# frozen_string_literal: true

require_relative "helper"
require_relative "test_ssl" # SSLTestHelpers
require "tempfile"

# UM::IO#mode, given or implied by the target.
class UMIOModeTest < UMTestCase
  include SSLTestHelpers

  def teardown
    close_tracked_ios
    super
  end

  def test_implied_by_fd
    r, _w = pipe
    a, _b = socketpair
    assert_equal :fd, @machine.io(r).mode
    assert_equal :socket, @machine.io(a).mode
    assert_equal :fd, @machine.io(a, :fd).mode
    assert_equal :socket, @machine.io(a, :socket).mode
    Tempfile.create("um-io") do |f|
      assert_equal :fd, @machine.io(f.fileno).mode
    end
  end

  def test_socket_implied_for_tcp
    server = track_fd(@machine.tcp_listen("127.0.0.1", 0))
    port = Socket.unpack_sockaddr_in(Socket.for_fd(server).tap { _1.autoclose = false }.getsockname).first
    client = track_fd(@machine.tcp_connect("127.0.0.1", port))
    conn = track_fd(@machine.accept(server))
    out = @machine.io(client)
    inp = @machine.io(conn)
    assert_equal [:socket, :socket], [out.mode, inp.mode]
    out.write("over tcp\n")
    assert_equal "over tcp", @machine.timeout(5, Timeout::Error) { inp.read_line }
  end

  def test_ssl_implied_by_ssl_socket
    server, client = connected_pair
    io = UM::IO.new(@machine, server)
    assert_equal :ssl, io.mode
    assert_same server, io.target
    s = @machine.spin { [io.read_line, io.read_line] }
    c = @machine.spin { client.write("secret\nline\n") }
    lines, = run_fibers!(s, c)
    assert_equal %w[secret line], lines
    assert_raises(TypeError) { UM::IO.new(@machine, server, :socket) }
    assert_raises(TypeError) { UM::IO.new(@machine, Object.new) }
  end
end
