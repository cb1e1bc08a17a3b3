# frozen_string_literal: true

require_relative "helper"
require "socket"

class SelectTest < UMTestCase
  def test_readable_pipe
    r, w = pipe
    @machine.write(w, "x")
    assert_equal [[r], [], []], @machine.select([r], [], [])
    assert_no_pending_ops
  end

  def test_writable_pipe
    r, w = pipe
    assert_equal [[], [w], []], @machine.select([r], [w], [])
    assert_no_pending_ops
  end

  def test_readable_and_writable
    r, w = pipe
    @machine.write(w, "x")
    assert_equal [[r], [w], []], @machine.select([r], [w], [], 1)
  end

  def test_waits_for_readiness
    r, w = pipe
    writer = @machine.spin do
      @machine.sleep(0.05)
      @machine.write(w, "hi")
    end
    t0 = monotonic
    assert_equal [[r], [], []], @machine.select([r], nil, nil)
    assert_operator monotonic - t0, :>=, 0.04
    @machine.join(writer)
    assert_equal "hi", read_once(r)
    assert_no_pending_ops
  end

  def test_hangup_is_readable
    r, w = pipe
    @machine.close(w)
    assert_equal [[r], [], []], @machine.select([r], [], [], 1)
  end

  def test_timeout_with_nothing_ready
    r, = pipe
    t0 = monotonic
    assert_nil @machine.select([r], [], [], 0.1)
    elapsed = monotonic - t0
    assert_operator elapsed, :>=, 0.09
    assert_operator elapsed, :<, 1
    assert_no_pending_ops
  end

  def test_zero_timeout
    r, w = pipe
    assert_nil @machine.select([r], [], [], 0)
    @machine.write(w, "x")
    assert_equal [[r], [], []], @machine.select([r], [], [], 0)
    assert_equal [[r], [w], []], @machine.select([r], [w], [], 0)
    assert_no_pending_ops
  end

  def test_no_fds_with_timeout
    t0 = monotonic
    assert_nil @machine.select([], [], [], 0.05)
    assert_operator monotonic - t0, :>=, 0.04
    assert_no_pending_ops
  end

  def test_timeout_numeric_kinds
    r, = pipe
    assert_nil @machine.select([r], [], [], 1 / 100r)
    assert_nil @machine.select([r], [], [], 0.01)
    assert_nil @machine.select([r], [], [], 0)
  end

  def test_many_fds
    pipes = 64.times.map { pipe }
    readers = pipes.map(&:first)
    @machine.write(pipes[7][1], "a")
    @machine.write(pipes[50][1], "b")
    assert_equal [[readers[7], readers[50]], [], []], @machine.select(readers, [], [])
    assert_no_pending_ops

    writers = pipes.map(&:last)
    r, w, e = @machine.select(readers, writers, [], 1)
    assert_equal [readers[7], readers[50]], r
    assert_equal writers, w
    assert_empty e
    assert_equal 0, @machine.metrics[:ops_runqueue]
    assert_no_pending_ops
  end

  # More polls than submission entries (and completions than the CQ holds).
  def test_more_fds_than_ring_entries
    machine = UM.new(4)
    pipes = 40.times.map { pipe }
    pipes.each { |_, w| machine.write(w, "x") }
    readers = pipes.map(&:first)
    writers = pipes.map(&:last)
    assert_equal [readers, writers, []], machine.select(readers, writers, [], 1)
    assert_no_pending_ops(machine)
  end

  def test_exceptional_condition
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    conn = server.accept
    assert_nil @machine.select([], [], [conn.fileno], 0.01)
    client.send("!", Socket::MSG_OOB)
    # The urgent byte alone does not make the socket readable.
    assert_equal [[], [], [conn.fileno]], @machine.select([conn.fileno], [], [conn.fileno], 1)
  ensure
    [client, conn, server].each { |io| io&.close }
  end

  def test_same_fd_in_two_sets
    a, = socketpair
    assert_equal [[], [a], []], @machine.select([a], [a], [], 1)
  end

  def test_bad_fd
    r, w = UM.pipe
    @machine.close(r)
    @machine.close(w)
    e = assert_raises(Errno::EBADF) { @machine.select([r], [], []) }
    assert_match(/select/, e.message)
    assert_raises(Errno::EBADF) { @machine.select([], [9999], [], 1) }
    assert_raises(Errno::EBADF) { @machine.select([], [], [-1]) }
    assert_no_pending_ops
  end

  def test_bad_fd_among_good_ones
    r, w = pipe
    @machine.write(w, "x")
    assert_raises(Errno::EBADF) { @machine.select([r, 9999], [w], []) }
    assert_raises(Errno::EBADF) { @machine.select([r], [], [9999], 0.1) }
    assert_no_pending_ops
  end

  def test_argument_errors
    r, = pipe
    assert_raises(TypeError) { @machine.select(["a"], [], []) }
    assert_raises(TypeError) { @machine.select([r, nil], [], []) }
    assert_raises(TypeError) { @machine.select([], [1.5], []) }
    assert_raises(TypeError) { @machine.select(r, [], []) }
    assert_raises(TypeError) { @machine.select([r], "w", []) }
    assert_raises(TypeError) { @machine.select([r], [], [], "1") }
    assert_raises(ArgumentError) { @machine.select([r], [], [], -1) }
    assert_raises(ArgumentError) { @machine.select([r], [], [], Float::NAN) }
    assert_raises(ArgumentError) { @machine.select([r], []) }
    assert_raises(ArgumentError) { @machine.select([r], [], [], 1, 2) }
    assert_raises(RangeError) { @machine.select([2**40], [], []) }
    assert_equal 0, @machine.metrics[:ops_pending]
  end

  def test_two_fibers_at_once
    r1, w1 = pipe
    r2, w2 = pipe
    f1 = @machine.spin { @machine.select([r1], [], []) }
    f2 = @machine.spin { @machine.select([r2], [], [], 5) }
    @machine.snooze
    @machine.write(w2, "2")
    assert_equal [[r2], [], []], @machine.join(f2)
    refute_predicate f1, :done?
    @machine.write(w1, "1")
    assert_equal [[r1], [], []], @machine.join(f1)
    assert_no_pending_ops
  end

  def test_interrupted_by_timeout
    r, w = pipe
    assert_raises(Timeout::Error) do
      @machine.timeout(0.05, Timeout::Error) { @machine.select([r], [], []) }
    end
    assert_no_pending_ops
    assert_equal 0, @machine.metrics[:ops_runqueue]

    # Nothing left behind reacts to the fd later.
    @machine.write(w, "x")
    assert_equal [[r], [], []], @machine.select([r], [], [])
    assert_no_pending_ops
  end

  def test_woken_with_value
    r, = pipe
    fiber = @machine.spin { @machine.select([r], [], []) }
    @machine.snooze
    @machine.schedule(fiber, :woken)
    assert_equal :woken, @machine.join(fiber)
    assert_no_pending_ops
  end

  def test_terminated
    r, = pipe
    fiber = @machine.spin { @machine.select([r], [], [], 10) }
    @machine.snooze
    @machine.terminate(fiber)
    assert_kind_of UM::Terminate, @machine.join(fiber)
    assert_no_pending_ops
  end

  def test_sets_may_change_while_waiting
    r, w = pipe
    rfds = [r]
    fiber = @machine.spin { @machine.select(rfds, [], []) }
    @machine.snooze
    rfds.replace([12_345])
    GC.start
    @machine.write(w, "x")
    assert_equal [[r], [], []], @machine.join(fiber)
  end
end
