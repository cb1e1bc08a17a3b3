# frozen_string_literal: true

require_relative "helper"

class CancelTest < UMTestCase
  def test_timeout_during_read_leaves_buffer_untouched
    r, w = pipe
    buf = +"untouched"
    assert_raises(Timeout::Error) do
      @machine.timeout(0.01, Timeout::Error) { @machine.read(r, buf, 100, -1) }
    end
    assert_no_pending_ops

    # Data written afterwards is not taken by the cancelled read.
    @machine.write(w, "later")
    assert_equal "untouched", buf
    buf << "!" # unlocked again
    out = +""
    assert_equal 5, @machine.read(r, out, 100)
    assert_equal "later", out
    assert_equal "untouched!", buf
  end

  def test_exception_scheduled_into_reader
    r, w = pipe
    buf = IO::Buffer.new(64)
    f = @machine.spin do
      @machine.read(r, buf)
    rescue RuntimeError => e
      e.message
    end
    @machine.snooze
    @machine.schedule(f, RuntimeError.new("stop"))
    assert_equal "stop", @machine.join(f)
    @machine.write(w, "abc")
    assert_equal "\0\0\0", buf.get_string(0, 3)
    refute buf.locked?
  end

  def test_non_exception_wake_returns_value
    r, _w = pipe
    f = @machine.spin { @machine.read(r, +"", 10) }
    @machine.snooze
    @machine.schedule(f, :woken)
    assert_equal :woken, @machine.join(f)
    assert_no_pending_ops
  end

  def test_cancel_write_on_full_pipe
    r, w = pipe
    big = "x" * (1 << 20)
    assert_operator @machine.write(w, big), :<, big.bytesize # fills the pipe
    assert_raises(Timeout::Error) do
      @machine.timeout(0.02, Timeout::Error) { @machine.write(w, big) }
    end
    assert_no_pending_ops
    # The machine is usable and the pipe still works.
    out = +""
    assert_operator @machine.read(r, out, 1 << 16), :>, 0
  end

  def test_cancel_many_in_one_go
    r, _w = pipe
    fibers = 100.times.map { @machine.spin { @machine.read(r, +"", 1) } }
    @machine.snooze
    assert_equal 100, @machine.metrics[:ops_pending]
    @machine.terminate(*fibers)
    results = @machine.join(*fibers)
    assert(results.all? { |x| x.is_a?(UM::Terminate) })
    assert_no_pending_ops
  end

  def test_interrupt_while_waiting_in_kernel
    main = Thread.current
    t = Thread.new do
      sleep 0.05
      main.raise(RuntimeError, "interrupted")
    end
    r, _w = pipe
    buf = +""
    e = assert_raises(RuntimeError) { @machine.read(r, buf, 10) }
    assert_equal "interrupted", e.message
    t.join
    assert_no_pending_ops
    buf << "unlocked"
  end

  def test_ten_thousand_fibers_sleeping_and_reading
    # 10,000 fibers; a hundredth of that under UM_GC_STRESS, where each
    # allocation runs the GC.
    n = ENV["UM_GC_STRESS"] == "1" ? 50 : 5000
    pipes = 50.times.map { pipe }
    readers = n.times.map do |i|
      spin_reader(pipes[i % 50][0], 1)
    end
    sleepers = n.times.map { |i| @machine.spin { @machine.sleep(0.001 * (i % 20)); i } }
    @machine.snooze
    assert_operator @machine.metrics[:ops_pending], :>, 4096 if n == 5000 # more than the SQ holds
    pipes.each { |_, w| @machine.write(w, "x" * 100) }

    assert_equal n.times.to_a, @machine.join(*sleepers)
    assert_equal ["x"] * n, @machine.join(*readers)
    assert_no_pending_ops
  end

  # Timeouts that fire as reads complete: the bytes already read are
  # returned (the timeout is raised at the next wait), never dropped. The
  # writer's short sleeps and the reader's timeouts expire together, so
  # timer and recv completions keep arriving in the same batch.
  def test_timeouts_racing_reads_lose_no_data
    r, w = socketpair
    messages = 1000.times.map { |i| format("%08d", i) }
    writer = @machine.spin do
      messages.each do |message|
        @machine.send(w, message, 8, 0)
        @machine.sleep(0.0002 + rand * 0.0003)
      end
      @machine.shutdown(w, UM::SHUT_WR)
    end
    received = +""
    timeouts = 0
    loop do
      buf = +""
      n = @machine.timeout(0.0002 + rand * 0.0003, Timeout::Error) { @machine.recv(r, buf, 5, 0) }
      break if n.zero?

      received << buf
    rescue Timeout::Error
      timeouts += 1
    end
    @machine.join(writer)
    assert_operator timeouts, :>, 0, "no timeout fired: the race was not exercised"
    assert_equal messages.join, received
    assert_no_pending_ops
  end

  # An op cancelled before it was submitted never reaches the kernel.
  def test_cancel_before_submission
    r, w = pipe
    @machine.write(w, "data")
    f = @machine.spin do
      @machine.timeout(0.01, Timeout::Error) { @machine.read(r, +"", 4) }
    rescue Timeout::Error => e
      e
    end
    @machine.snooze # f prepares its read and waits; nothing is submitted yet
    @machine.schedule(f, RuntimeError.new("before the read was submitted"))
    assert_equal "before the read was submitted", @machine.join(f).message
    assert_equal "data", read_once(r, 4) # the pipe still holds the data
    assert_no_pending_ops
  end
end
