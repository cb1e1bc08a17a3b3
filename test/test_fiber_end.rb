# frozen_string_literal: true

require_relative "helper"

# How spun fibers end (ext/um/um_fiber.c): for real when the machine's main
# fiber waits in the machine, parked otherwise; either way with their
# results, and without waking anybody out of turn.
class FiberEndTest < UMTestCase
  def test_fibers_end_while_the_main_fiber_waits
    fibers = Array.new(3) { |i| @machine.spin { @machine.sleep(0.001 * i); i } }
    assert_equal [0, 1, 2], @machine.join(*fibers)
    assert fibers.none?(&:alive?), "a finished fiber is still alive"
    assert fibers.all?(&:done?)
  end

  def test_many_fibers_end_with_their_results
    fibers = Array.new(200) { @machine.spin { @machine.snooze; :ok } }
    @machine.join(*fibers)
    assert_equal [:ok] * 200, fibers.map(&:result)
    assert_equal 0, fibers.count(&:alive?)
  end

  def test_fiber_ending_at_once_in_spin_now
    results = []
    Fiber.set_scheduler(UM::FiberScheduler.new(@machine))
    fibers = Array.new(5) { |i| Fiber.schedule { results << i } }
    Fiber.set_scheduler(nil)
    assert_equal [0, 1, 2, 3, 4], results
    assert fibers.none?(&:alive?)
  end

  def test_main_fiber_woken_by_its_own_op_not_by_an_end
    r, w = pipe
    reader = @machine.spin { read_once(r) }
    enders = Array.new(10) { @machine.spin { :done } }
    @machine.write(w, "data")
    assert_equal "data", @machine.join(reader)
    assert_equal [:done] * 10, @machine.join(*enders)
  end

  # A machine made in a spun fiber has a main fiber that is not the end of
  # the thread's resume chain: its fibers park instead of ending.
  def test_machine_made_in_a_spun_fiber
    result = @machine.join(@machine.spin do
      inner = UM.new
      fibers = Array.new(3) { |i| inner.spin { inner.snooze; i * 2 } }
      [inner.join(*fibers), fibers.all?(&:done?)]
    end)
    assert_equal [[0, 2, 4], true], result
  end

  # In a resumed fiber (an Enumerator's) the main fiber is not waiting in the
  # machine: the fibers park, the Enumerator gets its values in order.
  def test_fibers_finishing_inside_an_enumerator
    enum = Enumerator.new do |y|
      3.times do |i|
        f = @machine.spin { @machine.sleep(0.001); i }
        y << @machine.join(f)
      end
    end
    assert_equal [0, 1, 2], enum.take(3)
  end

  def test_machine_made_inside_an_enumerator
    enum = Enumerator.new do |y|
      m = UM.new
      3.times do |i|
        f = m.spin { m.snooze; i }
        y << m.join(f)
      end
    end
    assert_equal 0, enum.next
    assert_equal 1, enum.next
    assert_equal 2, enum.next
  end

  # An interrupt that arrives while the machine waits in the kernel (here on
  # the sleeper's stack) ends that fiber; fibers ending afterwards still
  # find the main fiber waiting where it was.
  def test_interrupt_while_the_machine_waits
    ready = Thread::Queue.new
    t = Thread.new do
      m = UM.new
      sleeper = m.spin { m.sleep(10) }
      ready << true
      interrupted = m.join(sleeper)
      quick = Array.new(5) { |i| m.spin { m.snooze; i } }
      [interrupted.message, m.join(*quick)]
    end
    ready.pop
    sleep 0.05
    t.raise(RuntimeError, "interrupted")
    assert_equal ["interrupted", [0, 1, 2, 3, 4]], t.value
  end

  def test_profile_mode_counts_a_fiber_until_its_end
    @machine.profile_mode = true
    fiber = @machine.spin do
      t = Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID)
      nil while Process.clock_gettime(Process::CLOCK_THREAD_CPUTIME_ID) - t < 0.02
    end
    @machine.join(fiber)
    assert_operator @machine.fiber_cpu_time(fiber), :>=, 0.015
  ensure
    @machine.profile_mode = false
  end
end
