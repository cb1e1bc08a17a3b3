# frozen_string_literal: true

require_relative "scheduler_helper"

class FiberSchedulerTest < SchedulerTestCase
  def test_fiber_starts_at_once
    order = []
    with_scheduler do
      Fiber.schedule { order << 1; sleep 0.01; order << 3 }
      order << 2
    end
    assert_equal [1, 2, 3], order
  end
end
