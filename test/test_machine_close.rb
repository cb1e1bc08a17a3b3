# frozen_string_literal: true

require_relative "helper"
require_relative "support/timed_child"

# UM#close (no argument): the ring and its fds go now, not at GC.
class MachineCloseTest < UMTestCase
  include TimedChild

  def fd_count
    Dir.children("/proc/self/fd").size
  end

  def fd_table
    Dir.children("/proc/self/fd").filter_map do |fd|
      [fd.to_i, File.readlink("/proc/self/fd/#{fd}")]
    rescue Errno::ENOENT
      nil # the fd Dir.children itself used
    end
  end

  # The fds a new machine opened, with what /proc says they are.
  def machine_fds
    GC.disable # no other machine's fd closed and reused meanwhile
    before = fd_table
    m = yield
    [m, (fd_table - before).to_h]
  ensure
    GC.enable
  end

  def test_close_releases_fds
    m, fds = machine_fds { UM.new(64) }
    assert_includes fds.values, "anon_inode:[io_uring]"
    assert_includes fds.values, "anon_inode:[eventfd]"
    refute m.closed?
    assert_nil m.close
    assert m.closed?
    fds.each_key { |fd| refute File.exist?("/proc/self/fd/#{fd}"), "fd #{fd} still open" }
  end

  def test_close_is_idempotent
    @machine.close
    assert_nil @machine.close
    assert @machine.closed?
  end

  def test_ops_after_close_raise
    r, w = pipe
    @machine.close
    [-> { @machine.read(r, +"", 1) }, -> { @machine.write(w, "x") }, -> { @machine.sleep(0.001) },
     -> { @machine.snooze }, -> { @machine.spin { 1 } }, -> { @machine.metrics }, -> { @machine.submit },
     -> { @machine.wakeup }, -> { @machine.close(r) }, -> { @machine.size }].each do |op|
      e = assert_raises(UM::Error) { op.call }
      assert_equal "machine is closed", e.message
    end
    assert_raises(UM::Error) { @machine.__send__(:initialize) }
  end

  def test_close_refuses_while_fibers_wait_on_ops
    r, w = pipe
    f = @machine.spin { @machine.read(r, +"", 1) }
    @machine.snooze
    e = assert_raises(UM::Error) { @machine.close }
    assert_match(/1 operation is pending/, e.message)
    refute @machine.closed?
    @machine.write(w, "x")
    assert_equal 1, @machine.join(f)
    @machine.close
    assert @machine.closed?
  end

  def test_close_refuses_with_scheduled_fibers
    f = @machine.spin { :f }
    assert_raises(UM::Error) { @machine.close }
    assert_equal :f, @machine.join(f)
    @machine.close
  end

  def test_close_from_another_thread_is_refused
    e = Thread.new { assert_raises(UM::Error) { @machine.close } }.value
    assert_match(/another thread/, e.message)
    refute @machine.closed?
  end

  def test_close_with_fd_still_closes_the_fd
    r, w = UM.pipe
    assert_equal r, @machine.close(r)
    assert_equal w, @machine.close(w)
    refute File.exist?("/proc/self/fd/#{r}")
    assert_raises(ArgumentError) { @machine.close(1, 2) }
  end

  def test_close_with_registered_buffers_unlocks_them
    buf = IO::Buffer.new(4096)
    @machine.register_buffers([buf])
    assert buf.locked?
    @machine.close
    refute buf.locked?
  end

  def test_thread_machine_renewed_after_close
    t = Thread.new do
      m = Thread.current.machine
      m.close
      m2 = Thread.current.machine
      [m, m2, m2.closed?, m2.sleep(0.001).positive?]
    end
    m, m2, closed, slept = t.value
    refute_same m, m2
    refute closed
    assert slept
  end

  # Close as many machines as there are fds several times over.
  def test_many_closed_machines_under_a_low_fd_limit
    status = in_timed_child(60) do
      Process.setrlimit(:NOFILE, 256)
      GC.disable # only #close may give the fds back
      2000.times { UM.new(64).close }
      true
    end
    assert status.success?, "child failed: #{status.inspect}"
  end

  # Dropped (not closed) machines: when the fds run out, a GC run gives back
  # the rings of the unreachable ones and setup is tried once more.
  def test_dropped_machines_are_collected_when_fds_run_out
    status = in_timed_child(60) do
      Process.setrlimit(:NOFILE, 256)
      GC.disable # only the retry's GC may collect them
      600.times { UM.new(64) }
      true
    end
    assert status.success?, "child failed: #{status.inspect}"
  end

  def test_fiber_scheduler_close_closes_its_own_machine
    s = UM::FiberScheduler.new
    m = s.machine
    ran = false
    s.fiber { m.sleep(0.001); ran = true }
    s.close
    assert ran
    assert m.closed?
    assert s.closed?
  end

  # A machine passed in stays the caller's.
  def test_fiber_scheduler_close_keeps_a_machine_passed_in
    s = UM::FiberScheduler.new(@machine)
    s.fiber { @machine.sleep(0.001) }
    s.close
    refute @machine.closed?
  end

  def test_fiber_scheduler_at_thread_exit_closes_its_machine
    m = Thread.new do
      scheduler = UM::FiberScheduler.new
      Fiber.set_scheduler(scheduler)
      Fiber.schedule { sleep 0.001 }
      scheduler.machine
    end.value
    assert m.closed?
  end
end
