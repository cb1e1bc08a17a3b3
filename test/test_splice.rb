# frozen_string_literal: true

require_relative "helper"
require "socket"

# #splice and #tee never block the thread in the kernel: they wait for their
# fds through the ring, so timeouts fire and other fibers run meanwhile.
class SpliceTest < UMTestCase
  # Runs the block in a forked child that reports through a pipe. A child
  # stuck in the kernel is freed by the unstick block (which makes the fds
  # ready) and killed; the test then fails instead of hanging.
  def run_bounded(limit, unstick)
    rd, wr = IO.pipe
    pid = fork do
      rd.close
      result = begin
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException
        "#{e.class}: #{e.message}"
      end
      wr.write(Marshal.dump(result))
      wr.close
      exit!(0)
    end
    wr.close
    deadline = monotonic + limit
    sleep 0.01 while monotonic < deadline && !Process.wait(pid, Process::WNOHANG)
    if $?.nil? || $?.pid != pid
      unstick.call
      Process.kill(:KILL, pid)
      Process.wait(pid)
      flunk "the child was still blocked after #{limit} s"
    end
    Marshal.load(rd.read)
  ensure
    rd&.close
  end

  # The defect: the splice blocked in an io-wq worker holding the pipe's
  # mutex, and the write into the same pipe then put the thread in an
  # uninterruptible sleep inside io_uring_enter: the timeout never fired.
  def test_splice_from_socket_times_out_while_the_pipe_is_written
    skip_timing_under_gc_stress
    a, b = socketpair
    r, w = pipe
    res = run_bounded(3, -> { IO.for_fd(b, autoclose: false).syswrite("unstick") }) do
      m = UM.new
      t0 = monotonic
      writer = m.spin { m.sleep(0.05); m.write(w, "from-writer") }
      outcome = begin
        m.timeout(0.2, Timeout::Error) { m.splice(a, w, 1000) }
      rescue Timeout::Error
        :timeout
      end
      m.join(writer)
      elapsed = monotonic - t0
      m.sleep(0.001) # the cancelled poll completes at the next visit to the kernel
      [outcome, elapsed, m.metrics[:ops_pending]]
    end
    assert_kind_of Array, res, res
    outcome, elapsed, pending = res
    assert_equal :timeout, outcome
    assert_operator elapsed, :<, 1.0
    assert_equal 0, pending
    assert_equal "from-writer", read_once(r, 100)
  end

  # A splice waits for data on a non-blocking socket instead of raising
  # EAGAIN, and moves it once it comes.
  def test_splice_waits_on_nonblocking_socket
    a, b = socketpair
    IO.for_fd(a, autoclose: false).nonblock = true
    r, w = pipe
    f = @machine.spin { @machine.splice(a, w, 1000) }
    @machine.snooze
    refute f.done?
    @machine.write(b, "payload")
    assert_equal 7, @machine.join(f)
    assert_equal "payload", read_once(r, 100)
  end

  # Ruby's TCP sockets are non-blocking: the splice waited for nothing and
  # raised Errno::EAGAIN.
  def test_splice_waits_on_nonblocking_tcp_socket
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    conn = server.accept
    r, w = pipe
    f = @machine.spin { @machine.splice(conn.fileno, w, 1000) }
    @machine.snooze
    refute f.done?
    client.write("tcp!")
    assert_equal 4, @machine.join(f)
    assert_equal "tcp!", read_once(r, 100)
  ensure
    [server, client, conn].each { |s| s&.close }
  end

  # A blocking TCP socket too (Ruby's own sockets are non-blocking).
  def test_splice_from_blocking_tcp_socket_times_out
    skip_timing_under_gc_stress
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    conn = server.accept
    conn.nonblock = false
    r, w = pipe
    res = run_bounded(3, -> { client.syswrite("unstick") }) do
      m = UM.new
      writer = m.spin { m.sleep(0.05); m.write(w, "w") }
      t0 = monotonic
      outcome = begin
        m.timeout(0.2, Timeout::Error) { m.splice(conn.fileno, w, 1000) }
      rescue Timeout::Error
        :timeout
      end
      m.join(writer)
      [outcome, monotonic - t0]
    end
    assert_kind_of Array, res, res
    assert_equal :timeout, res[0]
    assert_operator res[1], :<, 1.0
    client.write("tcp data")
    assert_equal 8, @machine.splice(conn.fileno, w, 1000)
    assert_equal "wtcp data", read_once(r, 100)
  ensure
    [server, client, conn].each { |s| s&.close }
  end

  # Pipe to socket: a full socket does not hold the pipe either.
  def test_splice_into_full_socket_times_out_while_the_pipe_is_read
    skip_timing_under_gc_stress
    a, b = socketpair
    r, w = pipe
    res = run_bounded(3, -> { IO.for_fd(b, autoclose: false).read_nonblock(1 << 22, exception: false) }) do
      m = UM.new
      IO.for_fd(a, autoclose: false).nonblock = true
      filler = "x" * 65_536
      loop { break if m.__send__(:send, a, filler, nil, UM::MSG_DONTWAIT) < 0 } rescue Errno::EAGAIN # rubocop:disable Style/RescueModifier
      IO.for_fd(a, autoclose: false).nonblock = false
      m.write(w, "y" * 1000)
      reader = m.spin { m.sleep(0.05); m.timeout(0.5, Timeout::Error) { m.read(r, +"", 10) } rescue :reader_timeout } # rubocop:disable Style/RescueModifier
      t0 = monotonic
      outcome = begin
        m.timeout(0.2, Timeout::Error) { m.splice(r, a, 1000) }
      rescue Timeout::Error
        :timeout
      end
      [outcome, monotonic - t0, m.join(reader)]
    end
    assert_kind_of Array, res, res
    assert_equal :timeout, res[0]
    assert_operator res[1], :<, 1.0
    assert_equal 10, res[2]
  end

  def test_tee_waits_for_input_and_times_out
    skip_timing_under_gc_stress
    r1, w1 = pipe
    _r2, w2 = pipe
    t0 = monotonic
    assert_raises(Timeout::Error) { @machine.timeout(0.1, Timeout::Error) { @machine.tee(r1, w2, 10) } }
    assert_operator monotonic - t0, :<, 1.0
    f = @machine.spin { @machine.tee(r1, w2, 10) }
    @machine.snooze
    @machine.write(w1, "abc")
    assert_equal 3, @machine.join(f)
    assert_no_pending_ops
  end

  def test_splice_eof_and_errors
    a, b = socketpair
    r, w = pipe
    @machine.close(b)
    @fds.delete(b)
    assert_equal 0, @machine.splice(a, w, 10)
    assert_raises(Errno::EBADF) { @machine.splice(9999, w, 1) }
    assert_raises(Errno::EINVAL) { @machine.splice(a, a, 1) }
    assert_raises(TypeError) { @machine.splice("a", w, 1) }
    assert_raises(TypeError) { @machine.splice(a, w, nil) }
    assert_raises(ArgumentError) { @machine.splice(a, w, -1) }
    assert_raises(ArgumentError) { @machine.tee(r, w, -1) }
  end
end
