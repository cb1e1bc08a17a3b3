# frozen_string_literal: true

require_relative "helper"

# UM::AsyncOp (machine.prep_timeout): several awaiters, cancellation by
# #cancel and by an interrupted #await, and the state methods agreeing.
# Waits that a regression could leave hanging are guarded.
class AsyncOpTest < UMTestCase
  class Hang < StandardError; end

  def guarded(seconds = 2, &block)
    @machine.timeout(seconds, Hang, &block)
  rescue Hang
    flunk "await did not return within #{seconds}s"
  end

  def assert_running(op)
    refute op.done?
    assert_nil op.result
    refute op.cancelled?
  end

  def assert_cancelled(op)
    assert op.done?
    assert op.cancelled?
    assert_equal(-UM::ECANCELED, op.result)
    assert_raises(Errno::ECANCELED) { op.await }
  end

  def test_awaited_by_two_fibers
    op = @machine.prep_timeout(0.02)
    a = @machine.spin { op.await }
    b = @machine.spin { op.await }
    assert_equal [-UM::ETIME, -UM::ETIME], guarded { @machine.join(a, b) }
    assert op.done?
    refute op.cancelled?
    assert_equal(-UM::ETIME, op.result)
  end

  def test_awaited_by_many_fibers_and_the_main_one
    op = @machine.prep_timeout(0.02)
    fibers = 5.times.map { @machine.spin { op.await } }
    assert_equal(-UM::ETIME, guarded { op.await })
    assert_equal [-UM::ETIME] * 5, guarded { @machine.join(*fibers) }
  end

  def test_await_after_cancel_raises
    op = @machine.prep_timeout(10)
    assert_running(op)
    assert_same op, op.cancel
    assert_raises(Errno::ECANCELED) { guarded { op.await } }
    assert_cancelled(op)
    op.cancel # a no-op once done
    assert_cancelled(op)
    assert_no_pending_ops
  end

  def test_cancelled_while_awaited
    op = @machine.prep_timeout(10)
    a = @machine.spin { op.await }
    b = @machine.spin { op.await }
    @machine.snooze
    op.cancel
    results = guarded { @machine.join(a, b) }
    results.each { |r| assert_kind_of Errno::ECANCELED, r }
    assert_cancelled(op)
    assert_no_pending_ops
  end

  def test_timeout_around_await_cancels
    op = @machine.prep_timeout(10)
    assert_raises(Timeout::Error) { @machine.timeout(0.01, Timeout::Error) { op.await } }
    guarded { @machine.sleep(0.005) } # the cancellation completes
    assert_cancelled(op)
    assert_no_pending_ops
  end

  def test_exception_around_await_cancels
    op = @machine.prep_timeout(10)
    waiter = @machine.spin { op.await }
    @machine.snooze
    @machine.schedule(waiter, RuntimeError.new("interrupted"))
    assert_kind_of RuntimeError, guarded { @machine.join(waiter) }
    @machine.sleep(0.005)
    assert_cancelled(op)
    assert_no_pending_ops
  end

  def test_terminate_around_await_cancels
    op = @machine.prep_timeout(10)
    waiter = @machine.spin { op.await }
    @machine.snooze
    @machine.terminate(waiter)
    assert_kind_of UM::Terminate, guarded { @machine.join(waiter) }
    @machine.sleep(0.005)
    assert_cancelled(op)
  end

  # One awaiter is interrupted: the op is cancelled, the other awaiter is
  # woken and sees the cancellation.
  def test_other_awaiters_see_an_interrupted_one_cancel
    op = @machine.prep_timeout(10)
    first = @machine.spin { op.await }
    second = @machine.spin { op.await }
    @machine.snooze
    @machine.schedule(first, RuntimeError.new("interrupted"))
    assert_kind_of RuntimeError, guarded { @machine.join(first) }
    assert_kind_of Errno::ECANCELED, guarded { @machine.join(second) }
    assert_cancelled(op)
  end

  # The op completes just before its first awaiter, interrupted, cancels
  # it: the result stands, and the other awaiter gets it.
  def test_completion_racing_an_interrupted_awaiter
    op = @machine.prep_timeout(0.01)
    first = @machine.spin { op.await }
    second = @machine.spin { op.await }
    @machine.snooze
    @machine.submit
    sleep(0.02) # Kernel#sleep: the timer fires, its completion waits in the ring
    @machine.schedule(first, RuntimeError.new("interrupted"))
    results = guarded { @machine.join(first, second) }
    assert_kind_of RuntimeError, results[0]
    assert_equal(-UM::ETIME, results[1])
    refute op.cancelled?
    assert_equal(-UM::ETIME, op.result)
    assert_equal(-UM::ETIME, op.await)
  end

  def test_await_from_another_thread
    op = @machine.prep_timeout(10)
    e = Thread.new { op.await rescue $! }.value # rubocop:disable Style/RescueModifier
    assert_kind_of UM::Error, e
    assert_running(op)
    op.cancel
    assert_raises(Errno::ECANCELED) { guarded { op.await } }
  end
end
