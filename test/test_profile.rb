# frozen_string_literal: true

require_relative "helper"

class ProfileTest < UMTestCase
  def busy(seconds)
    t0 = Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID)
    nil while Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) - t0 < seconds
  end

  def test_profile_mode_toggle
    refute @machine.profile_mode?
    @machine.profile_mode = true
    assert @machine.profile_mode?
    assert_kind_of Float, @machine.metrics[:time_total_wait]
    @machine.profile_mode = false
    refute @machine.profile_mode?
  end

  def test_fiber_cpu_time
    @machine.profile_mode = true
    worker = @machine.spin do
      3.times do
        busy(0.01)
        @machine.snooze
      end
    end
    sleeper = @machine.spin { 3.times { @machine.sleep(0.01) } }
    @machine.join(worker, sleeper)
    assert_operator @machine.fiber_cpu_time(worker), :>=, 0.029
    assert_operator @machine.fiber_cpu_time(sleeper), :<, 0.01
    assert_operator @machine.metrics[:time_total_wait], :>, 0
  end

  def test_fiber_cpu_time_of_current_fiber
    @machine.profile_mode = true
    busy(0.01)
    assert_operator @machine.fiber_cpu_time, :>=, 0.009
    assert_raises(TypeError) { @machine.fiber_cpu_time(:x) }
  end
end
