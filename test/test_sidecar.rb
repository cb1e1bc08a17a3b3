# frozen_string_literal: true

require_relative "helper"
require_relative "support/timed_child"
%w[test_fiber test_time test_file test_net test_cancel test_sync test_multishot test_proc test_select test_io].each do |file|
  require_relative file
end

# Sidecar mode: a native thread waits in the kernel for completions and
# wakes the machine's thread.
class SidecarTest < UMTestCase
  include TimedChild

  # The sidecar threads of this process (named um-sidecar): other threads,
  # such as Ruby's timer thread restarting after fork, come and go.
  def sidecar_count
    Dir.children("/proc/self/task").count do |tid|
      File.read("/proc/self/task/#{tid}/comm").chomp == "um-sidecar"
    rescue Errno::ENOENT, Errno::ESRCH
      false
    end
  end

  # Whether the number of sidecars comes back to count within a few seconds:
  # pthread_join returns once the thread has cleared its tid, a moment
  # before the kernel removes it from /proc/self/task.
  def sidecars_back_to?(count)
    deadline = monotonic + 5
    until sidecar_count == count
      return false if monotonic > deadline

      sleep 0.01
    end
    true
  end

  def test_sidecar_mode
    m = UM.new(sidecar: true)
    assert m.sidecar_mode?
    refute @machine.sidecar_mode?
    r, w = pipe
    reader = m.spin { buf = +""; m.read(r, buf, 10); buf }
    m.snooze
    m.write(w, "sidecar")
    assert_equal "sidecar", m.join(reader)
    assert_in_delta 0.02, m.sleep(0.02), 0.02
    m.close
  end

  def test_bad_arguments
    assert_raises(TypeError) { UM.new(sidecar: 1) }
    assert_raises(ArgumentError) { UM.new(sidecar: true, sqpoll: true) }
  end

  # A native thread, not a Ruby one; it is gone after #close. Counted in a
  # child: other tests' threads may end meanwhile in this process.
  def test_thread_starts_and_stops_on_close
    status = in_timed_child(30) do
      before = sidecar_count
      threads = Thread.list.size
      m = UM.new(64, sidecar: true)
      started = sidecar_count == before + 1 && Thread.list.size == threads
      m.close
      refused = begin
        m.sidecar_mode?
        false
      rescue UM::Error
        true
      end
      started && refused && sidecars_back_to?(before)
    end
    assert status.success?
  end

  def test_thread_stops_on_gc
    status = in_timed_child(30) do
      before = sidecar_count
      50.times { UM.new(64, sidecar: true).sleep(0.001) }
      GC.start
      sidecars_back_to?(before)
    end
    assert status.success?
  end

  def test_many_machines_closed
    status = in_timed_child(60) do
      before = sidecar_count
      200.times { UM.new(16, sidecar: true).close }
      sidecars_back_to?(before)
    end
    assert status.success?
  end

  # Closing right after a completion: the sidecar may be between seeing
  # stop unset and its futex wait; a bare wake then came too early and the
  # close (pthread_join) hung.
  def test_close_right_after_completions
    status = in_timed_child(30) do
      500.times do
        m = UM.new(16, sidecar: true)
        r, w = UM.pipe
        m.write(w, "x")
        m.read(r, +"", 1)
        m.close(r)
        m.close(w)
        m.close
      end
      true
    end
    assert status.success?, status.inspect
  end

  def test_wakeup_and_schedule_from_another_thread
    m = UM.new(sidecar: true)
    t = Thread.new do
      sleep 0.05
      m.wakeup
      sleep 0.05
      m.schedule(m.__send__(:main_fiber), :hello)
    end
    waits = m.metrics[:total_waits]
    assert_equal :hello, m.yield
    assert_operator m.metrics[:total_waits] - waits, :>=, 1
    t.join
    m.close
  end

  def test_interrupt_while_waiting
    m = UM.new(sidecar: true)
    main = Thread.current
    t = Thread.new { sleep 0.05; main.raise(RuntimeError, "interrupted") }
    t0 = monotonic
    assert_raises(RuntimeError) { m.sleep(5) }
    assert_operator monotonic - t0, :<, 2
    t.join
    m.sleep(0.001) # the cancelled timer is reaped
    assert_equal 0, m.metrics[:ops_pending]
    m.close
  end

  # In a forked child the sidecar thread does not exist: the inherited
  # machine is refused, can be closed and collected, and a new one works.
  def test_fork
    m = UM.new(64, sidecar: true)
    m.sleep(0.001)
    status = in_timed_child(20) do
      forked = m.forked?
      m.close
      m2 = UM.new(64, sidecar: true)
      ok = forked && m2.sleep(0.01) >= 0.009
      m2.close
      UM.new(64, sidecar: true) # dropped: stopped by the GC at exit
      GC.start
      ok
    end
    assert status.success?
    assert_in_delta 0.01, m.sleep(0.01), 0.05 # the parent's sidecar still runs
    m.close
  end
end

# A meaningful part of the suite with every machine in sidecar mode.
module SidecarMachine
  def setup
    super
    @machine = UM.new(sidecar: true)
  end

  def teardown
    super
    @machine.close rescue nil # rubocop:disable Style/RescueModifier
  end
end

[FiberTest, TimeTest, FileOpsTest, NetTest, CancelTest, MutexTest, QueueTest, MultishotTest, ProcTest,
 SelectTest, UMIOTest].each do |klass|
  Object.const_set("Sidecar#{klass.name}", Class.new(klass) { include SidecarMachine })
end
