# frozen_string_literal: true

require_relative "helper"
require "socket"

class MultishotTest < UMTestCase
  def local_port(fd)
    sock = Socket.for_fd(fd)
    sock.autoclose = false
    sock.local_address.ip_port
  end

  def test_read_each
    r, w = pipe
    f = @machine.spin do
      chunks = []
      @machine.read_each(r) { |chunk| chunks << chunk }
      chunks
    end
    @machine.snooze
    @machine.write(w, "abc")
    @machine.sleep(0.01)
    @machine.write(w, "def")
    @machine.close(w)
    assert_equal %w[abc def], @machine.join(f)
    assert_no_pending_ops
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_read_each_break
    r, w = pipe
    @machine.write(w, "first")
    got = nil
    @machine.read_each(r) do |chunk|
      got = chunk
      break
    end
    assert_equal "first", got
    assert_no_pending_ops
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_recv_each
    a, b = socketpair
    f = @machine.spin do
      data = +""
      @machine.recv_each(b, 0) { |chunk| data << chunk }
      data
    end
    @machine.snooze
    3.times { |i| @machine.write(a, "msg#{i};") }
    @machine.close(a)
    assert_equal "msg0;msg1;msg2;", @machine.join(f)
    assert_no_pending_ops
  end

  def test_recv_each_flags_are_passed
    _a, b = socketpair
    # The kernel refuses MSG_OOB for a multishot recv: it saw the flag.
    assert_raises(Errno::EINVAL) { @machine.recv_each(b, UM::MSG_OOB) { flunk } }
    assert_no_pending_ops
  end

  # A writer sends 10 chunks 5 ms apart; the block, given a callback for each
  # chunk, reads them until a 20 ms timeout cuts it short. Nothing may be
  # left pending or held afterwards.
  def assert_cut_short_mid_stream(wfd)
    writer = @machine.spin do
      10.times do
        @machine.write(wfd, "x" * 100)
        @machine.sleep(0.005)
      end
    end
    received = 0
    assert_raises(Timeout::Error) do
      @machine.timeout(0.02, Timeout::Error) { yield ->(chunk) { received += chunk.bytesize } }
    end
    assert_operator received, :>, 0
    @machine.join(writer)
    assert_no_pending_ops
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_recv_each_interrupted_by_timeout_mid_stream
    a, b = socketpair
    assert_cut_short_mid_stream(a) { |on_chunk| @machine.recv_each(b, 0, &on_chunk) }
    # The machine goes on working with the same socket.
    @machine.write(a, "after")
    out = +""
    @machine.read(b, out, 65_536) until out.end_with?("after")
  end

  def test_read_each_interrupted_by_timeout_mid_stream
    r, w = pipe
    assert_cut_short_mid_stream(w) { |on_chunk| @machine.read_each(r, &on_chunk) }
  end

  # A reader slower than the writer: the kernel runs out of the initial
  # buffers and the pool grows, with every byte delivered in order.
  def test_pool_grows_under_a_large_transfer
    a, b = socketpair
    data = Random.new(42).bytes(8 << 20)
    writer = @machine.spin do
      @machine.writev(a, data)
      @machine.close(a)
    end
    got = []
    @machine.recv_each(b, 0) do |chunk|
      got << chunk
      @machine.sleep(0.002) if got.size < 20 # slow at first: buffers pile up
    end
    @machine.join(writer)
    assert_equal data.bytesize, got.sum(&:bytesize)
    assert_equal data, got.join
    m = @machine.metrics
    assert_operator m[:buffer_grows], :>, 0
    assert_operator m[:buffers], :>, 16
    assert_equal 0, m[:buffers_in_use]
  end

  # UM::IO readers each holding a partial line pin every buffer of the pool;
  # a recv_each that then finds the pool exhausted reads into memory of its
  # own, and no byte is lost.
  def test_recv_each_with_the_pool_exhausted
    holders = 1500.times.map { socketpair }
    readers = holders.map do |a, b|
      @machine.write(a, "x" * 12_000) # no line end: the reader keeps it
      @machine.spin { @machine.io(b).read_line }
    end
    @machine.sleep(0.05) until @machine.metrics[:buffer_exhausted] > 0 || readers.all?(&:done?)

    a, b = socketpair
    data = Random.new(7).bytes(256 * 1024)
    writer = @machine.spin do
      @machine.writev(a, data)
      @machine.close(a)
    end
    got = []
    @machine.timeout(20, Timeout::Error) { @machine.recv_each(b, 0) { |chunk| got << chunk } }
    assert_equal data, got.join
    assert_operator @machine.metrics[:buffer_exhausted], :>, 0, "the pool was never exhausted: the test tests nothing"

    holders.each do |w, _|
      @machine.write(w, "\n")
      @machine.close(w)
    end
    @machine.join(writer, *readers)
    assert_equal ["x" * 12_000], readers.map(&:result).uniq
    assert_equal 0, @machine.metrics[:buffers_in_use]
  end

  def test_accept_each
    listener = track_fd(@machine.tcp_listen("127.0.0.1", 0))
    port = local_port(listener)
    clients = 3.times.map { |i| @machine.spin { fd = @machine.tcp_connect("127.0.0.1", port); @machine.write(fd, "c#{i}"); fd } }
    accepted = []
    @machine.accept_each(listener) do |fd|
      accepted << track_fd(fd)
      break if accepted.size == 3
    end
    @machine.join(*clients).each { |fd| track_fd(fd) }
    assert_equal %w[c0 c1 c2], accepted.map { |fd| read_once(fd) }.sort
    assert_no_pending_ops
  end

  def test_accept_each_ends_on_shutdown
    listener = track_fd(@machine.tcp_listen("127.0.0.1", 0))
    f = @machine.spin do
      count = 0
      @machine.accept_each(listener) { |fd| count += 1; track_fd(fd) }
      count
    end
    @machine.snooze
    track_fd(@machine.tcp_connect("127.0.0.1", local_port(listener)))
    @machine.sleep(0.01)
    @machine.shutdown(listener, UM::SHUT_RDWR)
    assert_equal 1, @machine.join(f)
    assert_no_pending_ops
  end

  def test_accept_into_queue
    listener = track_fd(@machine.tcp_listen("127.0.0.1", 0))
    queue = UM::Queue.new
    acceptor = @machine.spin { @machine.accept_into_queue(listener, queue) }
    @machine.snooze
    2.times { track_fd(@machine.tcp_connect("127.0.0.1", local_port(listener))) }
    2.times { assert_kind_of Integer, track_fd(@machine.shift(queue)) }
    @machine.shutdown(listener, UM::SHUT_RDWR)
    @machine.join(acceptor)
    assert_no_pending_ops
  end

  def test_errors
    assert_raises(Errno::EBADF) { @machine.recv_each(9999, 0) { 1 } }
    assert_raises(TypeError) { @machine.read_each("0") { 1 } }
    assert_raises(TypeError) { @machine.recv_each(0, "x") { 1 } }
    assert_raises(LocalJumpError) { @machine.accept_each(0) }
    r, _w = pipe
    assert_raises(Errno::ENOTSOCK) { @machine.accept_each(r) { 1 } }
    assert_no_pending_ops
  end
end
