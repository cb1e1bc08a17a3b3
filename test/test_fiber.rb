# frozen_string_literal: true

require_relative "helper"

class FiberTest < UMTestCase
  def test_spin_returns_non_blocking_fiber
    f = @machine.spin { :done }
    assert_kind_of Fiber, f
    refute f.blocking?
    refute f.done?
    assert_nil f.result
    assert_equal :done, @machine.join(f)
    assert f.done?
    assert_equal :done, f.result
  end

  def test_spin_value
    f = @machine.spin(42) { |v| v * 2 }
    assert_equal 84, @machine.join(f)
  end

  def test_spin_custom_class
    klass = Class.new(Fiber)
    f = @machine.spin(nil, klass) { 1 }
    assert_kind_of klass, f
    assert_equal 1, @machine.join(f)
    assert_raises(TypeError) { @machine.spin(nil, String) { 1 } }
    assert_raises(ArgumentError) { @machine.spin }
  end

  def test_spin_runs_only_when_scheduled
    ran = false
    f = @machine.spin { ran = true }
    refute ran
    @machine.snooze
    assert ran
    assert f.done?
  end

  def test_snooze_order
    log = []
    a = @machine.spin { 3.times { |i| log << [:a, i]; @machine.snooze } }
    b = @machine.spin { 3.times { |i| log << [:b, i]; @machine.snooze } }
    @machine.join(a, b)
    assert_equal [[:a, 0], [:b, 0], [:a, 1], [:b, 1], [:a, 2], [:b, 2]], log
  end

  def test_schedule_and_yield
    main = Fiber.current
    f = @machine.spin { @machine.schedule(main, :hello) }
    assert_equal :hello, @machine.yield
    @machine.join(f)
  end

  def test_schedule_returns_self
    f = @machine.spin { @machine.yield }
    @machine.snooze
    assert_same @machine, @machine.schedule(f, :x)
    assert_equal :x, @machine.join(f)
  end

  def test_schedule_exception
    f = @machine.spin do
      @machine.yield
    rescue RuntimeError => e
      "rescued #{e.message}"
    end
    @machine.snooze
    @machine.schedule(f, RuntimeError.new("boom"))
    assert_equal "rescued boom", @machine.join(f)
  end

  def test_schedule_bad_fiber
    assert_raises(TypeError) { @machine.schedule(:nope, 1) }
  end

  def test_switch
    main = Fiber.current
    log = []
    @machine.spin do
      log << :f
      @machine.schedule(main, :back)
    end
    assert_equal :back, @machine.switch
    assert_equal [:f], log
  end

  def test_join_multiple_and_exceptions
    a = @machine.spin { @machine.sleep(0.01); :a }
    b = @machine.spin { raise ArgumentError, "bad" }
    c = @machine.spin { :c }
    results = @machine.join(a, b, c)
    assert_equal :a, results[0]
    assert_kind_of ArgumentError, results[1]
    assert_equal :c, results[2]
  end

  def test_join_done_fibers_and_no_fibers
    f = @machine.spin { 1 }
    @machine.join(f)
    assert_equal 1, @machine.join(f)
    assert_equal [], @machine.join
    assert_raises(TypeError) { @machine.join(:x) }
  end

  def test_join_is_woken_once
    a = @machine.spin { :a }
    b = @machine.spin { :b }
    assert_equal [:a, :b], @machine.join(a, b)
    # No stale wake is left for the joiner: a later sleep runs its full time.
    assert_operator @machine.sleep(0.02), :>=, 0.019
  end

  def test_await
    fibers = 5.times.map { |i| @machine.spin { @machine.sleep(0.001 * i) } }
    assert_equal 5, @machine.await(*fibers)
    assert fibers.all?(&:done?)
  end

  def test_terminate
    r, _w = pipe
    f = @machine.spin { @machine.read(r, +"", 10) }
    @machine.snooze
    assert_nil @machine.terminate(f)
    result = @machine.join(f)
    assert_kind_of UM::Terminate, result
    assert_no_pending_ops
  end

  def test_terminate_before_start
    ran = false
    f = @machine.spin { ran = true }
    @machine.terminate(f)
    assert_kind_of UM::Terminate, @machine.join(f)
    refute ran
  end

  def test_terminate_with_ensure
    log = []
    f = @machine.spin do
      @machine.sleep(10)
    ensure
      log << :ensure
    end
    @machine.snooze
    @machine.terminate(f)
    @machine.join(f)
    assert_equal [:ensure], log
  end

  def test_fiber_set
    assert_empty @machine.fiber_set
    a = @machine.spin { @machine.sleep(0.01) }
    b = @machine.spin { :b }
    assert_equal Set[a, b], @machine.fiber_set
    @machine.join(b)
    assert_equal Set[a], @machine.fiber_set
    @machine.join(a)
    assert_empty @machine.fiber_set
  end

  def test_done_for_plain_fibers
    f = Fiber.new { 1 }
    refute f.done?
    f.resume
    assert f.done?
    refute Fiber.current.done?
  end

  def test_many_fibers
    count = 0
    fibers = 1000.times.map { @machine.spin { @machine.snooze; count += 1 } }
    @machine.join(*fibers)
    assert_equal 1000, count
  end

  # A fiber that snoozes forever must not starve a reader whose pipe has data.
  def test_fairness
    r, w = pipe
    stop = false
    spinner = @machine.spin { @machine.snooze until stop }
    reader = @machine.spin do
      buf = +""
      @machine.read(r, buf, 10)
      stop = true
      buf
    end
    @machine.write(w, "data")
    assert_equal "data", @machine.join(reader)
    @machine.join(spinner)
  end

  def test_exception_in_fiber_does_not_propagate
    f = @machine.spin { raise "in fiber" }
    @machine.snooze
    assert_kind_of RuntimeError, f.result
  end

  def test_join_enumerables_and_procs
    a = @machine.spin { :a }
    b = @machine.spin { :b }
    assert_equal [:a, :b], @machine.join([a, b])
    assert_equal [:a, :b, :c], @machine.join(Set[a], [[b]], -> { :c })
    assert_equal :p, @machine.join(proc { @machine.sleep(0.001); :p })
    boom = -> { raise ArgumentError, "boom" }
    assert_kind_of ArgumentError, @machine.join(boom)
    assert_equal 3, @machine.await([a, b], -> { 1 })
    assert_raises(TypeError) { @machine.join([a, :x]) }
    assert_raises(TypeError) { @machine.await(1) }
  end

  def test_pending_fibers
    assert_equal Set[], @machine.pending_fibers
    r, w = pipe
    reader = @machine.spin { @machine.read(r, +"", 1) }
    sleeper = @machine.spin { @machine.sleep(0.05) }
    runner = @machine.spin { @machine.timeout(1, RuntimeError) { @machine.snooze while true } }
    @machine.snooze
    assert_kind_of Set, @machine.pending_fibers
    assert_equal Set[reader, sleeper], @machine.pending_fibers
    @machine.write(w, "x")
    @machine.join(reader, sleeper)
    assert_equal Set[], @machine.pending_fibers
    @machine.terminate(runner)
    @machine.join(runner)
  end

  # The fiber to join runs on another thread's machine: its end must wake
  # this machine, whichever finishes first.
  def test_join_fiber_of_another_thread
    Timeout.timeout(20) do
      60.times do |i|
        fibers = Thread::Queue.new
        t = Thread.new do
          m = UM.new(64)
          f = m.spin { m.sleep(0.001 * (i % 3)) if i.odd?; i }
          fibers << f
          m.join(f)
          m.close
        end
        f = fibers.pop
        assert_equal i, i.even? ? @machine.join(f) : (@machine.await(f) && f.result)
        t.join
      end
    end
  end

  # Both ways at once: fibers of two threads joining each other's fibers.
  def test_join_across_threads_both_ways
    Timeout.timeout(20) do
      20.times do
        q1 = Thread::Queue.new
        q2 = Thread::Queue.new
        t = Thread.new do
          m = UM.new(64)
          mine = m.spin { m.sleep(0.001); :theirs }
          q1 << mine
          other = q2.pop
          r = m.join(other)
          m.join(mine)
          r
        end
        mine = @machine.spin { @machine.snooze; :ours }
        q2 << mine
        theirs = q1.pop
        assert_equal :theirs, @machine.join(theirs)
        assert_equal :ours, t.value
      end
    end
  end
end
