# frozen_string_literal: true

require_relative "helper"

class TimeTest < UMTestCase
  def test_sleep
    t = @machine.sleep(0.05)
    assert_kind_of Float, t
    assert_in_delta 0.05, t, 0.04
  end

  def test_sleep_integer_and_rational
    assert_operator @machine.sleep(0), :<, 0.05
    assert_operator @machine.sleep(1r / 100), :>=, 0.009
  end

  def test_sleep_zero_lets_others_run
    ran = false
    @machine.spin { ran = true }
    @machine.sleep(0)
    assert ran
  end

  def test_sleep_bad_arguments
    assert_raises(ArgumentError) { @machine.sleep(-1) }
    assert_raises(ArgumentError) { @machine.sleep(Float::NAN) }
    assert_raises(TypeError) { @machine.sleep("1") }
    assert_raises(TypeError) { @machine.sleep(:x) }
  end

  def test_sleep_forever_until_woken
    main = Fiber.current
    @machine.spin { @machine.sleep(0.02); @machine.schedule(main, nil) }
    t = @machine.sleep
    assert_operator t, :>=, 0.015
  end

  def test_concurrent_sleeps
    skip_timing_under_gc_stress
    t0 = monotonic
    fibers = 10.times.map { @machine.spin { @machine.sleep(0.05) } }
    @machine.join(*fibers)
    assert_operator monotonic - t0, :<, 0.4
  end

  def test_timeout_raises
    t0 = monotonic
    assert_raises(Timeout::Error) do
      @machine.timeout(0.02, Timeout::Error) { @machine.sleep(1) }
    end
    assert_operator monotonic - t0, :<, 0.5
    assert_no_pending_ops
  end

  def test_timeout_message_and_instance
    e = assert_raises(Timeout::Error) { @machine.timeout(0.01, Timeout::Error) { @machine.sleep(1) } }
    assert_equal "execution expired", e.message

    exc = RuntimeError.new("custom")
    e = assert_raises(RuntimeError) { @machine.timeout(0.01, exc) { @machine.sleep(1) } }
    assert_same exc, e
  end

  def test_timeout_returns_block_value
    assert_equal :ok, @machine.timeout(1, Timeout::Error) { :ok }
    assert_no_pending_ops
  end

  def test_timeout_bad_arguments
    assert_raises(TypeError) { @machine.timeout(1, "nope") { 1 } }
    assert_raises(TypeError) { @machine.timeout(1, String) { 1 } }
    assert_raises(ArgumentError) { @machine.timeout(-1, Timeout::Error) { 1 } }
    assert_raises(LocalJumpError) { @machine.timeout(1, Timeout::Error) }
  end

  # The timer fires while the fiber is busy (not waiting): the block returns
  # before the fiber suspends again, and no exception may come later.
  def test_no_late_timeout
    @machine.timeout(0.01, Timeout::Error) do
      t0 = monotonic
      nil while monotonic - t0 < 0.03 # busy: the expiry arrives meanwhile
      :done
    end
    # Completions are reaped on the next suspension: nothing may be raised.
    @machine.sleep(0.03)
    @machine.snooze
    assert_equal 0, @machine.metrics[:ops_runqueue]
  end

  def test_nested_timeouts
    outer = Class.new(StandardError)
    inner = Class.new(StandardError)
    assert_raises(inner) do
      @machine.timeout(1, outer) { @machine.timeout(0.01, inner) { @machine.sleep(1) } }
    end
    assert_raises(outer) do
      @machine.timeout(0.01, outer) { @machine.timeout(1, inner) { @machine.sleep(1) } }
    end
    assert_no_pending_ops
  end

  def test_timeout_in_other_fibers
    results = 5.times.map do |i|
      @machine.spin do
        @machine.timeout(0.01 * (i + 1), Timeout::Error) { @machine.sleep(0.025) }
        :finished
      rescue Timeout::Error
        :timed_out
      end
    end
    assert_equal [:timed_out, :timed_out, :finished, :finished, :finished], @machine.join(*results)
  end

  def test_periodically
    if UM.kernel_version < 604
      assert_raises(UM::Error) { @machine.periodically(0.01) { break } }
      return
    end
    skip_timing_under_gc_stress
    count = 0
    t0 = monotonic
    @machine.periodically(0.01) do
      count += 1
      break if count == 5
    end
    assert_equal 5, count
    assert_in_delta 0.05, monotonic - t0, 0.1
    assert_no_pending_ops
  end

  def test_periodically_with_timeout
    skip_timing_under_gc_stress
    skip "multishot timeouts need Linux 6.4" if UM.kernel_version < 604
    count = 0
    assert_raises(Timeout::Error) do
      @machine.timeout(0.055, Timeout::Error) { @machine.periodically(0.01) { count += 1 } }
    end
    assert_includes 3..6, count
    assert_no_pending_ops
  end

  def test_periodically_bad_arguments
    assert_raises(ArgumentError) { @machine.periodically(0) { 1 } }
    assert_raises(TypeError) { @machine.periodically("x") { 1 } }
    assert_raises(LocalJumpError) { @machine.periodically(1) }
  end

  def test_prep_timeout
    op = @machine.prep_timeout(0.02)
    assert_kind_of UM::AsyncOp, op
    assert_equal :timeout, op.kind
    refute op.done?
    assert_nil op.result
    t0 = monotonic
    assert_equal(-UM::ETIME, op.await)
    assert_operator monotonic - t0, :>=, 0.015
    assert op.done?
    refute op.cancelled?
    assert_equal(-UM::ETIME, op.result)
    assert_equal(-UM::ETIME, op.await)
  end

  def test_prep_timeout_cancel
    op = @machine.prep_timeout(10)
    op.cancel
    assert_raises(Errno::ECANCELED) { op.await }
    assert op.cancelled?
    assert_no_pending_ops
  end

  def test_prep_timeout_awaited_from_fibers
    op = @machine.prep_timeout(0.02)
    f = @machine.spin { op.await }
    assert_equal(-UM::ETIME, @machine.join(f))
  end

  def test_prep_timeout_garbage_collected_while_running
    10.times { @machine.prep_timeout(0.01) }
    GC.start
    @machine.sleep(0.03)
    assert_no_pending_ops
  end

  def test_prep_timeout_bad_arguments
    assert_raises(ArgumentError) { @machine.prep_timeout(-1) }
    assert_raises(TypeError) { @machine.prep_timeout(nil) }
    assert_raises(TypeError) { UM::AsyncOp.new }
  end
end
